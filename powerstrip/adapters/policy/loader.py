"""Reading a policy rules file: YAML walked node by node, so every problem carries its ``file:line``
(the same checks as adapters.yml: duplicate keys, unknown keys, wrong types), all reported together."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from yaml.constructor import SafeConstructor
from yaml.nodes import Node, ScalarNode, SequenceNode

from powerstrip.adapters.policy.model import (
    LIMITS,
    MODES,
    NAMESPACES,
    Action,
    ClientMatch,
    Concurrency,
    HostPorts,
    IPNetwork,
    Mode,
    Policy,
    Powers,
    Profile,
    RateLimit,
    Redaction,
    Rule,
)
from powerstrip.adapters.policy.paths import compile_glob
from powerstrip.adapters.policy.powers import capability
from powerstrip.adapters.policy.presets import PRESETS
from powerstrip.config.loader import (
    ConfigError,
    _compose,
    _describe,
    _InvalidYaml,
    _line,
    _mapping,
    _number,
    _Report,
    _string,
)

_TOP_KEYS = ("version", "owner_label", "profiles")
_PROFILE_KEYS = ("name", "match", "presets", "mode", "rules", "powers", "rate_limit", "concurrency", "owner",
                 "labels", "env", "image_remap", "redact")
_MATCH_KEYS = ("uid", "gid", "address", "cert_cn", "cert_san", "listener")
_RULE_KEYS = ("allow", "deny", "reason", "mode")
_POWER_BOOLS = ("unrestricted", "privileged", "join_containers", "devices", "device_requests", "volumes_from",
                "unconfined", "require_no_new_privileges", "root", "volume_mounts", "plugins", "swarm", "image_loads")
_POWER_LISTS = ("host_namespaces", "capabilities", "require_drop", "bind_sources", "runtimes", "sysctls", "images",
                "require_limits", "network_drivers", "log_drivers", "host_ports", "network_subnets")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_BOOL = "tag:yaml.org,2002:bool"
T = TypeVar("T")


class PolicyError(ConfigError):
    """A rules file that cannot be used; one ``file:line: problem`` per line, like adapters.yml's errors."""


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: cannot read the policy rules: {exc}"]) from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str) -> Policy:
    """The policy in ``text`` (``source`` names it in messages); ``PolicyError`` lists every problem."""
    report = _Report(source)
    try:
        root = _compose(text, report)
    except _InvalidYaml as exc:
        raise PolicyError([str(exc)]) from None
    policy = _policy(root, source, report)
    if policy is None or report.problems:
        raise PolicyError(report.sorted_problems())
    return policy


def _policy(root: Node | None, source: str, report: _Report) -> Policy | None:
    if root is None:
        report.error_at(1, "empty policy: expected a mapping with 'profiles'")
        return None
    top = _mapping(root, "the policy", _TOP_KEYS, report)
    if top is None:
        return None
    if "version" in top and _number(top["version"][1]) != 1:
        report.error(top["version"][1], f"unsupported version {_describe(top['version'][1])}: only version 1 exists")
    if "profiles" not in top:
        report.error(root, "missing required key 'profiles' (a list of profiles; the first that matches a client decides)")
        return None
    owner_label = _get(top, "owner_label", _text, report, "powerstrip.owner")
    profiles_node = top["profiles"][1]
    if not isinstance(profiles_node, SequenceNode):
        report.error(profiles_node, f"'profiles' must be a list, not {_describe(profiles_node)}")
        return None
    profiles = [_profile(node, source, report) for node in profiles_node.value]
    seen: dict[str, int] = {}
    for profile in profiles:
        if profile is None:
            continue
        if profile.name in seen:
            report.error_at(profile.line, f"duplicate profile name {profile.name!r} (first at line {seen[profile.name]})")
        seen.setdefault(profile.name, profile.line)
    return Policy(tuple(p for p in profiles if p is not None), source, owner_label)


def _profile(node: Node, source: str, report: _Report) -> Profile | None:
    entries = _mapping(node, "a profile", _PROFILE_KEYS, report)
    if entries is None:
        return None
    if "name" not in entries:
        report.error(node, "a profile needs a 'name'")
        return None
    name = _text(entries["name"][1], report)
    if name is None:
        return None
    what = f"profile {name!r}"
    match = _match(entries["match"][1], what, report) if "match" in entries else ClientMatch()
    rules = _rules(entries["rules"][1], what, source, report) if "rules" in entries else []
    powers = _powers(entries["powers"][1], what, report) if "powers" in entries else Powers()
    for preset_node in _items(entries["presets"][1]) if "presets" in entries else []:
        preset = _text(preset_node, report)
        if preset is None:
            continue
        if preset not in PRESETS:
            report.error(preset_node, f"{what}: unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
            continue
        rules += PRESETS[preset]
    mode = _get(entries, "mode", _mode, report, "enforce")
    rate = _rate(entries["rate_limit"], what, source, report) if "rate_limit" in entries else None
    concurrency = _concurrency(entries["concurrency"], what, source, report) if "concurrency" in entries else None
    owner = _get(entries, "owner", _text, report, None)
    labels, env, remap = (_string_map(entries[key][1], f"{what}: {key}", report) if key in entries else ()
                          for key in ("labels", "env", "image_remap"))
    redact = _redact(entries["redact"][1], what, report) if "redact" in entries else Redaction()
    if match is None or powers is None:
        return None
    return Profile(name, match, tuple(rules), powers, cast(Mode, mode), rate, owner, labels, env, remap, redact,
                   _line(node), concurrency)


# --- values --------------------------------------------------------------------------------------


def _get(entries: dict[str, tuple[Node, Node]], key: str, convert: Callable[[Node, _Report], T | None],
         report: _Report, default: T) -> T:
    if key not in entries:
        return default
    value = convert(entries[key][1], report)
    return default if value is None else value


def _text(node: Node, report: _Report) -> str | None:
    value = _string(node)
    if value is None or not value.strip():
        report.error(node, f"expected a non-empty string, not {_describe(node)}")
        return None
    return value


def _bool(node: Node, report: _Report) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return cast(bool, SafeConstructor().construct_object(node))
    report.error(node, f"expected true or false, not {_describe(node)}")
    return None


def _mode(node: Node, report: _Report) -> Mode | None:
    value = _string(node)
    if value not in MODES:
        report.error(node, f"mode must be one of {', '.join(MODES)}, not {_describe(node)}")
        return None
    return cast(Mode, value)


def _items(node: Node) -> list[Node]:
    """A list, or one scalar standing for a list of one."""
    return list(node.value) if isinstance(node, SequenceNode) else [node]


def _scalars(node: Node, report: _Report) -> list[tuple[Any, Node]]:
    values = []
    for item in _items(node):
        if not isinstance(item, ScalarNode) or item.tag == "tag:yaml.org,2002:null":
            report.error(item, f"expected a value, not {_describe(item)}")
            continue
        values.append((SafeConstructor().construct_object(item), item))
    return values


def _match(node: Node, what: str, report: _Report) -> ClientMatch | None:
    entries = _mapping(node, f"{what}: match", _MATCH_KEYS, report)
    if entries is None:
        return None
    found: dict[str, Any] = {}
    for key in ("uid", "gid"):
        if key in entries:
            ids = []
            for value, item in _scalars(entries[key][1], report):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    report.error(item, f"{what}: {key} must be a number (or a list of numbers), not {_describe(item)}")
                else:
                    ids.append(value)
            found[key + "s"] = frozenset(ids)
    if "address" in entries:
        networks = []
        for value, item in _scalars(entries["address"][1], report):
            try:
                networks.append(ipaddress.ip_network(str(value), strict=False))
            except ValueError:
                report.error(item, f"{what}: address {value!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)")
        found["networks"] = tuple(networks)
    for key, field_name in (("cert_cn", "cert_cns"), ("cert_san", "cert_sans"), ("listener", "listeners")):
        if key in entries:
            found[field_name] = tuple(str(value) for value, _ in _scalars(entries[key][1], report))
    for listener, item in _scalars(entries["listener"][1], report) if "listener" in entries else []:
        if not str(listener).startswith(("unix://", "tcp://")):
            report.error(item, f"{what}: listener {listener!r} must be a --listen address (unix:///path, tcp://host:port)")
    return ClientMatch(**found)


def _rules(node: Node, what: str, source: str, report: _Report) -> list[Rule]:
    if not isinstance(node, SequenceNode):
        report.error(node, f"{what}: 'rules' must be a list of {{allow: ...}} / {{deny: ...}}, not {_describe(node)}")
        return []
    rules = []
    for item in node.value:
        entries = _mapping(item, f"{what}: a rule", _RULE_KEYS, report)
        if entries is None:
            continue
        actions = [key for key in ("allow", "deny") if key in entries]
        if len(actions) != 1:
            report.error(item, f"{what}: a rule has exactly one of 'allow' or 'deny'")
            continue
        action = cast(Action, actions[0])
        patterns = []
        for value, pattern_node in _scalars(entries[action][1], report):
            try:
                patterns.append(compile_glob(str(value)))
            except ValueError as exc:
                report.error(pattern_node, f"{what}: {exc}")
        reason = _get(entries, "reason", _text, report, None)
        mode = _get(entries, "mode", _mode, report, None)
        rules.append(Rule(action, tuple(patterns), reason, mode, _line(item), source))
    return rules


def _powers(node: Node, what: str, report: _Report) -> Powers | None:
    entries = _mapping(node, f"{what}: powers", _POWER_BOOLS + _POWER_LISTS, report)
    if entries is None:
        return None
    found: dict[str, Any] = {key: _get(entries, key, _bool, report, getattr(Powers(), key))
                             for key in _POWER_BOOLS if key in entries}
    for key in _POWER_LISTS:
        if key not in entries:
            continue
        values = [(str(value), item) for value, item in _scalars(entries[key][1], report)]
        if key == "host_namespaces" or key == "require_limits":
            known = NAMESPACES if key == "host_namespaces" else LIMITS
            for value, item in values:
                if value not in known:
                    report.error(item, f"{what}: {key}: {value!r} is not one of {', '.join(known)}")
            found[key] = frozenset(value for value, _ in values)
        elif key in ("capabilities", "require_drop"):
            found[key] = frozenset(capability(value) for value, _ in values)
        elif key == "bind_sources":
            for value, item in values:
                if not value.startswith("/"):
                    report.error(item, f"{what}: bind_sources: {value!r} is not an absolute path")
            found[key] = tuple(value.rstrip("/") or "/" for value, _ in values)
        elif key in ("runtimes", "log_drivers"):
            found[key] = tuple(value for value, _ in values) + ("",)  # the daemon's default
        elif key == "host_ports":
            found[key] = _host_ports(values, what, report)
        elif key == "network_subnets":
            found[key] = _subnets(values, what, report)
        else:
            found[key] = tuple(value for value, _ in values)
    return Powers(**found)


def _host_ports(values: list[tuple[str, Node]], what: str, report: _Report) -> HostPorts:
    """``host_ports: [8080, "8000-8999", ephemeral]``: ports, inclusive ranges, and ``ephemeral`` for the ports the
    daemon picks; an empty list allows none."""
    ranges: list[tuple[int, int]] = []
    ephemeral = False
    for value, item in values:
        if value.strip() == "ephemeral":
            ephemeral = True
            continue
        match = _PORT_RANGE.fullmatch(value.strip())
        low, high = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
        if not 1 <= low <= high <= 65535:
            report.error(item, f"{what}: host_ports: {value!r} is not a port (1-65535), a range such as 8000-8999, "
                         "or ephemeral")
        else:
            ranges.append((low, high))
    return HostPorts(tuple(ranges), ephemeral)


def _subnets(values: list[tuple[str, Node]], what: str, report: _Report) -> tuple[IPNetwork, ...]:
    found = []
    for value, item in values:
        try:
            found.append(ipaddress.ip_network(value.strip()))
        except ValueError as exc:
            report.error(item, f"{what}: network_subnets: {value!r} is not a network such as 172.16.0.0/12 ({exc})")
    return tuple(found)


def _rate(entry: tuple[Node, Node], what: str, source: str, report: _Report) -> RateLimit | None:
    """``rate_limit: {rate: R, burst: B}``; its ``file:line`` (the key's) names it in refusals."""
    key, node = entry
    entries = _mapping(node, f"{what}: rate_limit", ("rate", "burst"), report)
    if entries is None or "rate" not in entries:
        if entries is not None:
            report.error(node, f"{what}: rate_limit needs 'rate' (requests per second)")
        return None
    rate = _number(entries["rate"][1])
    if rate is None or not math.isfinite(rate) or rate <= 0:
        report.error(entries["rate"][1], f"{what}: rate must be a positive number, not {_describe(entries['rate'][1])}")
        return None
    burst = _number(entries["burst"][1]) if "burst" in entries else max(1, math.ceil(rate))
    if not isinstance(burst, int) or burst < 1:
        report.error(entries["burst"][1], f"{what}: burst must be a whole number >= 1")
        return None
    return RateLimit(float(rate), burst, _line(key), source)


def _concurrency(entry: tuple[Node, Node], what: str, source: str, report: _Report) -> Concurrency | None:
    """``concurrency: N`` or ``concurrency: {max: N, streams: true}``."""
    key, node = entry
    streams = False
    if isinstance(node, ScalarNode):
        limit_node = node
    else:
        entries = _mapping(node, f"{what}: concurrency", ("max", "streams"), report)
        if entries is None:
            return None
        if "max" not in entries:
            report.error(node, f"{what}: concurrency needs 'max' (how many requests may be in progress at once)")
            return None
        limit_node = entries["max"][1]
        streams = _get(entries, "streams", _bool, report, False)
    limit = _number(limit_node)
    if not isinstance(limit, int) or limit < 1:
        report.error(limit_node, f"{what}: concurrency must be a whole number >= 1 (or {{max: N, streams: true}}), "
                                 f"not {_describe(limit_node)}")
        return None
    return Concurrency(limit, streams, _line(key), source)


def _string_map(node: Node, what: str, report: _Report) -> tuple[tuple[str, str], ...]:
    """A mapping of strings to strings, in file order (labels, env, image_remap)."""
    entries = _mapping(node, what, None, report) or {}
    pairs = []
    for key, (_, value) in entries.items():
        text = _string(value)
        if text is None:
            report.error(value, f"{what}: the value of {key!r} must be a string, not {_describe(value)}")
        else:
            pairs.append((key, text))
    return tuple(pairs)


def _redact(node: Node, what: str, report: _Report) -> Redaction:
    entries = _mapping(node, f"{what}: redact", ("env", "mounts"), report) or {}
    return Redaction(env=_get(entries, "env", _bool, report, False), mounts=_get(entries, "mounts", _bool, report, False))

