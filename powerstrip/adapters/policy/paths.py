"""The path a rule judges, and the globs rules are written in.

Rules see the path dockerd's router will match (``normalize_path``: query cut, decoded once, cleaned),
with the API version prefix removed, so ``GET /containers/json`` covers ``/v1.41/containers/json``,
``/containers/json``, ``/v1.41/containers/json/`` and ``/v1.41//containers/./json?x=/_ping``.
"""

from __future__ import annotations

import functools
import re

from powerstrip.adapters.policy.model import PathGlob
from powerstrip.http.paths import normalize_path

_VERSION = re.compile(r"/v[0-9.]+(?=/|$)")
# Endpoints (version-stripped policy paths) several checks and mutations single out
LEGACY_START = re.compile(r"/containers/[^/]+/start")  # its body, below API 1.24, is a HostConfig dockerd applies
SERVICE_SPEC = re.compile(r"/services/(?:create|[^/]+/update)")  # its body is a whole service spec
_METHOD = re.compile(r"[A-Z]+|\*")


@functools.lru_cache(maxsize=4096)
def policy_path(target: str) -> str:
    """``/v1.41/containers/x/json?y=1`` → ``/containers/x/json``: cleaned, version stripped, trailing slash
    dropped (the daemon's router treats ``/containers/json/`` as ``/containers/json``)."""
    path = normalize_path(target)
    version = _VERSION.match(path)
    if version:
        path = path[version.end():] or "/"
    return path.rstrip("/") or "/"


def compile_glob(text: str) -> PathGlob:
    """``"GET,HEAD /containers/*/json"`` → a PathGlob; ``ValueError`` with a readable message otherwise."""
    methods_text, _, glob = text.strip().partition(" ")
    glob = glob.strip()
    if not glob.startswith("/") or " " in glob:
        raise ValueError(f"{text!r} is not \"METHOD /path\" (e.g. \"GET /containers/json\", "
                         "\"GET,HEAD /_ping\", \"* /containers/**\")")
    methods = methods_text.split(",")
    bad = [method for method in methods if not _METHOD.fullmatch(method)]
    if bad:
        raise ValueError(f"{text!r}: {bad[0]!r} is not an uppercase HTTP method or *")
    if _VERSION.match(glob):
        raise ValueError(f"{text!r}: rules match the path without its API version (/v1.41 is stripped)")
    glob = glob.rstrip("/") or "/"
    tail = ""
    if glob.endswith("/**"):  # "/containers/**" covers "/containers" itself too
        glob, tail = glob[:-3], "(?:/.*)?"
    regex = "".join(_piece(piece) for piece in re.split(r"(\*\*|\*)", glob)) + tail
    return PathGlob(text, None if "*" in methods else frozenset(methods), re.compile(regex))


def _piece(piece: str) -> str:
    if piece == "**":
        return ".*"
    if piece == "*":
        return "[^/]*"
    return re.escape(piece)
