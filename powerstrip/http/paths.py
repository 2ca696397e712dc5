"""Request paths as Docker's router sees them, and the ``"METHOD /path-glob"`` patterns matched on them.

At the bottom (no powerstrip imports): the route table, the config loader, the SDK, protocol v2 and
the canonicaliser all match or report paths the same way.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

_PATTERN_SYNTAX = re.compile(r"([A-Z]+|\*) (/\S*)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # Go's getScheme
ANY_METHOD = "*"
_ANY_VERSION = "/*/"


def normalize_path(target: str) -> str:
    """The path Docker's router will match for request target ``target``.

    The query is cut at the first raw ``?``, then the path is percent-decoded once and
    cleaned like Go's ``path.Clean`` (as gorilla/mux does, trailing slash kept). Matching
    the raw URI instead is how AuthZ filters were bypassed (``?x=/auth``, ``%2F``, ``..``).
    A target with a scheme yields its path as Go's ``url.ParseRequestURI`` reads it: after the
    authority of ``http://host/path``, and also right after the scheme of ``x:/containers/create``,
    which dockerd routes to ``/containers/create`` (a scheme-less reading would see ``/x:/...``).
    """
    path = target.partition("?")[0]
    return _remembered(path) if len(path) <= _MEMO_PATH else _normalized(path)


def _normalized(path: str) -> str:
    if not path.startswith("/"):
        path = _after_scheme(path)
    return _clean(unquote(path))


# A hooked request's path is read several times (routes, canonicaliser, SDK) and paths repeat across requests;
# only short ones are remembered, so that the memo stays small (1,024 × 256 characters at most).
_MEMO_PATH = 256
_remembered = functools.lru_cache(maxsize=1024)(_normalized)


def _after_scheme(target: str) -> str:
    """Go's reading of a request target with a scheme (``getScheme``, then an authority only after ``//``);
    a path without a leading ``/`` is opaque to Go and routes nowhere (``/``)."""
    scheme = _SCHEME.match(target)
    if scheme is None:
        return target
    rest = target[scheme.end():]
    if rest.startswith("//"):
        slash = rest.find("/", 2)
        return rest[slash:] if slash >= 0 else "/"
    return rest if rest.startswith("/") else "/"


def _clean(path: str) -> str:
    """Go's ``path.Clean`` for a path made rooted, keeping one trailing slash if present."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    cleaned = "/" + "/".join(segments)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled ``"METHOD /path-glob"`` endpoint pattern; ``*`` as the method matches every method.

    The glob has ``fnmatch`` semantics, case-sensitive, ``*`` crossing ``/``. A glob that
    starts with ``/*/`` (any API version) also matches the unversioned path, because
    Docker serves both and a hook must not be skipped by dropping the version.
    """

    method: str
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, pattern: str) -> Pattern:
        """Compile ``pattern``; ``ValueError`` if it is not ``"METHOD /path-glob"``."""
        syntax = _PATTERN_SYNTAX.fullmatch(pattern)
        if syntax is None:
            raise ValueError(f"endpoint pattern {pattern!r} is not \"METHOD /path-glob\" "
                             "(uppercase method or *, one space, a path starting with '/')")
        method, glob = syntax.groups()
        regex = fnmatch.translate(glob)
        if glob.startswith(_ANY_VERSION):
            regex = f"{regex}|{fnmatch.translate(glob[len(_ANY_VERSION) - 1:])}"
        return cls(method, re.compile(regex))

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` on the already normalized ``path`` matches."""
        return (method == self.method or self.method == ANY_METHOD) and self.regex.match(path) is not None
