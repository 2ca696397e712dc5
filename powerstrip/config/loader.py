"""Loading and validating ``adapters.yml``.

The file is read at start-up and on reload, never per request (ClusterHQ's re-read it on every
path segment of every request). It is parsed to a YAML node tree and walked here, so that every problem carries
its line and duplicate keys are caught (a plain ``yaml.safe_load`` silently keeps the last).
All problems are collected and reported together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from powerstrip.config.builtins import BUILTINS
from powerstrip.config.model import (
    DEFAULT_ADAPTER_TIMEOUT,
    AdapterKind,
    AdapterSpec,
    Config,
    EndpointSpec,
    FailurePolicy,
)
from powerstrip.http.paths import Pattern

CONFIG_ENV = "POWERSTRIP_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("adapters.yml"), Path("/etc/powerstrip/adapters.yml"))

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_CORE_SCALAR_TAGS = (_STR, _INT, _FLOAT, "tag:yaml.org,2002:bool")
_TOP_KEYS = ("version", "endpoints", "adapters")
_ENDPOINT_KEYS = ("pre", "post")
_ADAPTER_KEYS = ("url", "timeout", "failure_policy", "protocol", "kind", "rules")
_FAILURE_POLICIES = ("fail", "ignore")
_KINDS = ("mutating", "validating")
_PROTOCOLS = (1, 2)
_PYTHON_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

# Requests whose responses are streams (endless, hijacked or large archives): a v1
# post-hook needs the whole body, so the gateway relays these without post-hooks.
_STREAMING_SAMPLES = (
    ("GET", "/v1.41/events"),
    ("GET", "/v1.41/containers/x/logs"),
    ("GET", "/v1.41/containers/x/stats"),
    ("POST", "/v1.41/containers/x/attach"),
    ("POST", "/v1.41/exec/x/start"),
    ("POST", "/v1.41/build"),
    ("POST", "/v1.41/images/create"),
    ("POST", "/v1.41/images/x/push"),
    ("GET", "/v1.41/containers/x/archive"),
    ("GET", "/v1.41/containers/x/export"),
    ("GET", "/v1.41/images/x/get"),
)


class ConfigError(Exception):
    """A configuration that cannot be used; ``str`` gives one ``file:line: problem`` per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def find_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to load, or None when there is none (the gateway then only relays).

    Order: ``explicit`` (``--config``), ``$POWERSTRIP_CONFIG`` (empty counts as unset),
    ``./adapters.yml``, ``/etc/powerstrip/adapters.yml``. A path that was asked for by
    name must exist: silently running without the hooks someone configured is unsafe.
    """
    named = explicit or environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError([f"config file not found: {named}"])
        return path
    return next((path for path in DEFAULT_CONFIG_PATHS if path.is_file()), None)


def passthrough_config() -> Config:
    """The config used when there is no file: no endpoints, so every request is relayed."""
    return Config(path=None)


def load_config(path: Path) -> Config:
    """Read, parse and validate ``path``; raise ``ConfigError`` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {_reason(exc)}"]) from None
    report = _Report(str(path))
    try:
        root = _compose(text, report)
    except _InvalidYaml as exc:
        raise ConfigError([str(exc)]) from None
    config = _build(root, path, report)
    if config is None:
        raise ConfigError(report.sorted_problems())
    return config


class _InvalidYaml(ValueError):
    """The text is not YAML; the message names the file, and the line where the parser knows it."""


def _compose(text: str, report: _Report) -> Node | None:
    """The YAML node tree of ``text`` (lines kept for messages), or ``_InvalidYaml``."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _InvalidYaml(_syntax_error(exc, report)) from None
    except yaml.YAMLError as exc:
        raise _InvalidYaml(f"{report.file}: invalid YAML: {exc}") from None


def _syntax_error(exc: yaml.MarkedYAMLError, report: _Report) -> str:
    """``file:line: invalid YAML: context, problem (context at line N)``, at the problem's line."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    message = "invalid YAML: " + ", ".join(part for part in (exc.context, exc.problem) if part)
    if exc.context_mark and exc.context_mark.line + 1 != line:
        message += f" (see line {exc.context_mark.line + 1})"
    return report.format(line, message)


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


@dataclass
class _Report:
    """Problems and warnings found while walking, each as ``file:line: message``."""

    file: str
    problems: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self, line: int, message: str) -> str:
        return f"{self.file}:{line}: {message}"

    def error(self, node: Node, message: str) -> None:
        self.error_at(_line(node), message)

    def error_at(self, line: int, message: str) -> None:
        self.problems.append((line, self.format(line, message)))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(self.format(line, message))

    def sorted_problems(self) -> list[str]:
        return [text for _, text in sorted(self.problems, key=lambda problem: problem[0])]


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _build(root: Node | None, path: Path, report: _Report) -> Config | None:
    """Validate the whole document; None when there were problems."""
    if root is None:
        report.error_at(1, "empty file: expected a mapping with 'endpoints' and 'adapters'")
        return None
    top = _mapping(root, "the configuration", _TOP_KEYS, report)
    if top is None:
        return None
    if "version" in top:
        _check_version(top["version"][1], report)
    for required in ("endpoints", "adapters"):
        if required not in top:
            report.error(root, f"missing required key '{required}' (it may be empty: {required}: {{}})")
    defined = _adapters(top["adapters"][1], path.resolve().parent, report) if "adapters" in top else {}
    endpoints = _endpoints(top["endpoints"][1], report) if "endpoints" in top else []
    if "adapters" in top:
        _check_references(endpoints, defined, report)
    adapters = {name: spec for name, spec in defined.items() if spec is not None}
    _warn_unused(endpoints, adapters, report)
    _warn_streaming_post_hooks(endpoints, report)
    if report.problems:
        return None
    specs = tuple(endpoint.spec for endpoint in endpoints)
    return Config(path=path, endpoints=specs, adapters=adapters, warnings=tuple(report.warnings))


def _mapping(
    node: Node, what: str, allowed: tuple[str, ...] | None, report: _Report
) -> dict[str, tuple[Node, Node]] | None:
    """The entries of a mapping node as ``{key: (key node, value node)}``, in file order.

    Reports a node that is not a mapping, non-string keys, duplicate keys and (when
    ``allowed`` is given) unknown keys; entries with such keys are left out.
    """
    if not isinstance(node, MappingNode):
        report.error(node, f"{what} must be a mapping, not {_describe(node)}")
        return None
    entries: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR):
            report.error(key_node, f"keys of {what} must be strings, not {_describe(key_node)}")
        elif key_node.value in entries:
            first = _line(entries[key_node.value][0])
            report.error(key_node, f"duplicate key {key_node.value!r} (first at line {first})")
        elif allowed is not None and key_node.value not in allowed:
            report.error(key_node, f"unknown key {key_node.value!r} in {what} (allowed: {', '.join(allowed)})")
        else:
            entries[key_node.value] = (key_node, value_node)
    return entries


def _describe(node: Node) -> str:
    """A short name for what a node holds, for error messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "empty (null)"
    if node.tag not in _CORE_SCALAR_TAGS:
        return f"{node.value!r} ({node.tag})"
    return repr(node.value)


def _number(node: Node) -> int | float | None:
    """The value of an int or float scalar (bools and everything else give None)."""
    if not isinstance(node, ScalarNode) or node.tag not in (_INT, _FLOAT):
        return None
    value = SafeConstructor().construct_object(node)
    return value if isinstance(value, (int, float)) else None


def _string(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) and node.tag == _STR else None


def _check_version(node: Node, report: _Report) -> None:
    if node.tag != _INT or _number(node) != 1:
        report.error(node, f"unsupported version {_describe(node)}: only version 1 exists")


# --- adapters -------------------------------------------------------------------------


def _adapters(node: Node, directory: Path, report: _Report) -> dict[str, AdapterSpec | None]:
    """Every adapter defined, None for an invalid one (reported, but still a defined name)."""
    entries = _mapping(node, "'adapters'", None, report) or {}
    return {name: _adapter(name, _line(key), value, directory, report) for name, (key, value) in entries.items()}


def _adapter(name: str, line: int, node: Node, directory: Path, report: _Report) -> AdapterSpec | None:
    """One adapter: a URL string (the ClusterHQ form) or ``{url, timeout, failure_policy, protocol, kind, rules}``.

    ``rules`` names a built-in's own rules file, relative to this file's directory."""
    if isinstance(node, ScalarNode):
        url = _url(name, node, report)
        return AdapterSpec(name, url, line=line) if url else None
    if isinstance(node, SequenceNode):
        report.error(node, f"adapter {name!r} must be a URL or a mapping with 'url', not a list")
        return None
    entries = _mapping(node, f"adapter {name!r}", _ADAPTER_KEYS, report)
    if entries is None:
        return None
    if "url" not in entries:
        report.error(node, f"adapter {name!r} has no 'url'")
        return None
    url = _url(name, entries["url"][1], report)
    timeout = _timeout(name, entries["timeout"][1], report) if "timeout" in entries else DEFAULT_ADAPTER_TIMEOUT
    policy = _policy(name, entries["failure_policy"][1], report) if "failure_policy" in entries else "fail"
    protocol = _protocol(name, url, entries["protocol"][1], report) if "protocol" in entries else 1
    kind = _kind(name, entries["kind"][1], report) if "kind" in entries else "mutating"
    rules = _rules(name, url, entries["rules"][1], directory, report) if "rules" in entries else None
    if url is None or timeout is None or policy is None or protocol is None or kind is None:
        return None
    return AdapterSpec(name, url, timeout=timeout, failure_policy=policy, protocol=protocol, kind=kind, line=line,
                       rules=rules)


def _rules(name: str, url: str | None, node: Node, directory: Path, report: _Report) -> str | None:
    """A built-in's rules file: it must exist now (its own contents are the built-in's to check)."""
    rules = _string(node)
    if not rules:
        report.error(node, f"adapter {name!r}: rules must name a file, not {_describe(node)}")
        return None
    if url is not None and not url.startswith("builtin:"):
        report.error(node, f"adapter {name!r}: rules applies to built-in adapters only (builtin:policy)")
        return None
    path = directory / rules
    if not path.is_file():
        report.error(node, f"adapter {name!r}: rules file not found: {path}")
        return None
    return str(path)


def _url(name: str, node: Node, report: _Report) -> str | None:
    """A valid adapter URL: ``http(s)://host...``, ``builtin:NAME`` of a known built-in or ``python:MODULE:ATTR``."""
    url = _string(node)
    if url is None:
        report.error(node, f"adapter {name!r}: url must be a string, not {_describe(node)}")
        return None
    problem = _url_problem(url)
    if problem:
        report.error(node, f"adapter {name!r}: {problem}")
        return None
    return url


def _url_problem(url: str) -> str | None:
    if url.startswith("builtin:"):
        builtin = url.removeprefix("builtin:")
        if builtin not in BUILTINS:
            return f"unknown built-in adapter {builtin!r} (known: {', '.join(sorted(BUILTINS))})"
        return None
    if url.startswith("python:"):
        if not _PYTHON_TARGET.fullmatch(url.removeprefix("python:")):
            return f"invalid url {url!r}: expected python:MODULE:ATTRIBUTE (e.g. python:mypkg.hooks:adapter)"
        return None
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        return f"invalid url {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"invalid url {url!r}: expected http://HOST/..., https://HOST/..., builtin:NAME or python:MODULE:ATTR"
    return None


def _timeout(name: str, node: Node, report: _Report) -> float | None:
    value = _number(node)
    if value is None or not math.isfinite(value) or value <= 0:
        report.error(node, f"adapter {name!r}: timeout must be a positive number of seconds, not {_describe(node)}")
        return None
    return float(value)


def _protocol(name: str, url: str | None, node: Node, report: _Report) -> int | None:
    value = _number(node)
    if value not in _PROTOCOLS or isinstance(value, float):
        report.error(node, f"adapter {name!r}: protocol must be 1 or 2, not {_describe(node)}")
        return None
    if url is not None and not url.startswith(("http://", "https://")):
        report.error(node, f"adapter {name!r}: protocol applies to http(s) adapters only; "
                           "in-process adapters need no wire protocol")
        return None
    return int(value)


def _kind(name: str, node: Node, report: _Report) -> AdapterKind | None:
    kind = _string(node)
    if kind not in _KINDS:
        report.error(node, f"adapter {name!r}: kind must be 'mutating' or 'validating', not {_describe(node)}")
        return None
    return cast(AdapterKind, kind)


def _policy(name: str, node: Node, report: _Report) -> FailurePolicy | None:
    policy = _string(node)
    if policy not in _FAILURE_POLICIES:
        report.error(node, f"adapter {name!r}: failure_policy must be 'fail' or 'ignore', not {_describe(node)}")
        return None
    return cast(FailurePolicy, policy)


# --- endpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    """An endpoint as parsed, with the nodes of its adapter names for error lines."""

    spec: EndpointSpec
    pattern: Pattern
    references: tuple[tuple[str, Node], ...]


def _endpoints(node: Node, report: _Report) -> list[_Endpoint]:
    entries = _mapping(node, "'endpoints'", None, report) or {}
    endpoints = (_endpoint(pattern, key, value, report) for pattern, (key, value) in entries.items())
    return [endpoint for endpoint in endpoints if endpoint is not None]


def _endpoint(pattern: str, key_node: Node, node: Node, report: _Report) -> _Endpoint | None:
    """One ``"METHOD /glob": {pre: [...], post: [...]}`` entry."""
    try:
        compiled = Pattern.compile(pattern)
    except ValueError as exc:
        report.error(key_node, str(exc))
        compiled = None
    entries = _mapping(node, f"endpoint {pattern!r}", _ENDPOINT_KEYS, report)
    if entries is None:
        return None
    chains = {phase: _names(pattern, phase, entries[phase][1], report) for phase in _ENDPOINT_KEYS if phase in entries}
    if not any(chains.values()):
        if all(chain is not None for chain in chains.values()):
            report.error(node, f"endpoint {pattern!r} names no adapters: give 'pre' and/or 'post'")
        return None
    if compiled is None or None in chains.values():
        return None
    pre, post = chains.get("pre") or [], chains.get("post") or []
    spec = EndpointSpec(pattern, tuple(n for n, _ in pre), tuple(n for n, _ in post), line=_line(key_node))
    return _Endpoint(spec, compiled, tuple(pre + post))


def _names(pattern: str, phase: str, node: Node, report: _Report) -> list[tuple[str, Node]] | None:
    """The adapter names of one phase: a list of names, or one name for convenience."""
    items = node.value if isinstance(node, SequenceNode) else [node]
    names = [(_string(item), item) for item in items]
    bad = [item for name, item in names if not name]
    for item in bad:
        report.error(item, f"endpoint {pattern!r}: '{phase}' must list adapter names, not {_describe(item)}")
    return None if bad else [(name, item) for name, item in names if name]


def _check_references(endpoints: list[_Endpoint], defined: Mapping[str, object], report: _Report) -> None:
    for endpoint in endpoints:
        for name, node in endpoint.references:
            if name not in defined:
                report.error(node, f"endpoint {endpoint.spec.pattern!r} uses undefined adapter {name!r}")


def _warn_unused(endpoints: list[_Endpoint], adapters: dict[str, AdapterSpec], report: _Report) -> None:
    used = {name for endpoint in endpoints for name, _ in endpoint.references}
    for spec in adapters.values():
        if spec.name not in used:
            report.warn(spec.line, f"adapter {spec.name!r} is defined but no endpoint uses it")


def _warn_streaming_post_hooks(endpoints: list[_Endpoint], report: _Report) -> None:
    for endpoint in endpoints:
        if not endpoint.spec.post:
            continue
        streams = [f"{m} {p}" for m, p in _STREAMING_SAMPLES if endpoint.pattern.matches(m, p)]
        if streams:
            report.warn(
                endpoint.spec.line,
                f"endpoint {endpoint.spec.pattern!r} has post-hooks and matches streaming endpoints "
                f"({', '.join(streams)}): post-hooks cannot run on a stream response in protocol v1, "
                "so the gateway relays such responses without them",
            )
