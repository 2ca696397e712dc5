"""Request bodies as dockerd will execute them: one canonical object for the hooks and the daemon.

A hook that reads a body with Python's ``json.loads`` can be shown a different request than the one
dockerd runs: Go matches struct fields without regard to case, merges repeated keys, reads HostConfig
fields from the top level of a create body, ignores data after the value. ``canonicalize`` decodes a
hooked body the way dockerd does (``decode`` with the Engine API's schema, ``legacy`` for the create
body's placement rules) and returns its canonical serialisation: every hook is given that text, and
it is what the daemon is sent, so what was judged and what runs cannot differ.

The rules, and what is refused, are written down in docs/adapters.md ("What a hook sees").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from powerstrip.canonical import legacy
from powerstrip.canonical.decode import (
    MISSING,
    Ambiguous,
    BodyRefused,
    Undecodable,
    decode,
    parse,
    plain,
    serialise,
)
from powerstrip.canonical.schema import Schema, Struct, api_version, engine_schema
from powerstrip.http.paths import normalize_path

__all__ = ["Ambiguous", "BodyRefused", "CanonicalBody", "Undecodable", "canonicalize", "judged", "judged_body"]

_VERSIONED = re.compile(r"/v([0-9.]+)(/.*)\Z", re.S)
_JSON_START = ("{", "[")


@dataclass(frozen=True, slots=True)
class CanonicalBody:
    """A body as the hooks get it and the daemon is sent it; ``schema`` names the Go type it was read as."""

    text: str
    value: Any
    schema: str


def split_version(path: str) -> tuple[tuple[int, ...] | None, str]:
    """``/v1.41/containers/create`` → ``((1, 41), "/containers/create")``, as moby's router splits it."""
    match = _VERSIONED.match(path)
    if match is None:
        return None, path
    return api_version(match.group(1)), match.group(2)


def canonicalize(method: str, path: str, body: str, schema: Schema | None = None) -> CanonicalBody | None:
    """The canonical form of ``body`` sent with ``method`` to the cleaned ``path``.

    ``None``: the body is not JSON and the endpoint does not take JSON (a build context, an archive),
    so there is nothing to canonicalise. ``BodyRefused`` (``Undecodable`` or ``Ambiguous``): the client
    gets a 400 with its message.
    """
    schema = schema or engine_schema()
    version, route = split_version(path)
    endpoint = schema.endpoint(method, route, version)
    if endpoint is None and not body.lstrip(" \t\r\n").startswith(_JSON_START):
        return None
    raw = parse(body)
    if endpoint is None:
        value = plain(raw, (), 0)
        return CanonicalBody(serialise(value), value, "json")
    value = decode(endpoint.type, MISSING, raw)
    if endpoint.legacy == "container-create" and value is not MISSING and isinstance(endpoint.type, Struct):
        value = legacy.place(value, endpoint.type)
    value = None if value is MISSING else value
    name = endpoint.type.name if isinstance(endpoint.type, Struct) else type(endpoint.type).__name__
    return CanonicalBody(serialise(value), value, name)


def judged_body(method: str, target: str, body: str | None) -> str | None:
    """The body hooks are given and the daemon is sent for a request to ``target`` (path and query).

    Its canonical text when it is JSON, else the body as it is; ``BodyRefused`` when dockerd would read it
    otherwise than a hook could, or not at all.
    """
    return judged(method, target, body)[0]


def judged(method: str, target: str, body: str | None) -> tuple[str | None, CanonicalBody | None]:
    """``judged_body``, and the canonical body it was read as when it is JSON (its decoded value with it)."""
    if not body:
        return body, None
    found = canonicalize(method, normalize_path(target), body)
    return (body, None) if found is None else (found.text, found)
