"""The Engine API's request structs, as dockerd's Go code declares them.

``engine_schema.json`` is generated from moby's sources by ``scripts/gen_engine_schema.py`` (field names
after JSON tags, types, pointers, embedded structs flattened by encoding/json's rules) and checked against
the real daemon by the tests. This module turns it into type objects the decoder walks, and says which
request (method, path, API version) dockerd decodes into which type.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Union

# Go's int ranges for the integer kinds the API uses (int is 64 bits on the platforms dockerd runs on).
INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-2**7, 2**7 - 1), "int16": (-2**15, 2**15 - 1), "int32": (-2**31, 2**31 - 1),
    "int64": (-2**63, 2**63 - 1), "uint8": (0, 2**8 - 1), "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1), "uintptr": (0, 2**64 - 1),
}
FLOAT_LIMITS = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308}


@dataclass(frozen=True, slots=True)
class Scalar:
    """bool, string, an integer or float kind, or bytes (``[]byte``: base64 text)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Pointer:
    elem: GoType


@dataclass(frozen=True, slots=True)
class Slice:
    elem: GoType


@dataclass(frozen=True, slots=True)
class Array:
    """A fixed-size Go array: extra JSON elements are dropped, missing ones are zero."""

    size: int
    elem: GoType


@dataclass(frozen=True, slots=True)
class Map:
    """``map[string]V``: keys are kept exactly as sent (no case folding)."""

    elem: GoType


@dataclass(frozen=True, slots=True)
class StrSlice:
    """moby's ``strslice.StrSlice``: a string or an array of strings."""


@dataclass(frozen=True, slots=True)
class Any:
    """A value dockerd decodes by other means (``interface{}``, custom unmarshalers): kept as JSON."""


class Field:
    """A struct field: its JSON name (canonical spelling), type, and the embedded struct it comes from.

    ``fast``, ``low``/``high`` and ``null_resets`` let the decoder take the common cases (a string field given
    a string, an integer in range, a null) without a call: every Python line there runs per field per body.
    """

    __slots__ = ("name", "type", "via", "fast", "low", "high", "null_resets", "null_is_plain")

    def __init__(self, name: str, type: GoType, via: str = "") -> None:  # noqa: A002 - the field's type
        self.name = name
        self.type = type
        self.via = via  # "" for the struct's own fields, else e.g. "HostConfig.Resources"
        kind = type.kind if isinstance(type, Scalar) else ""
        self.fast: type | None = {"string": str, "bool": bool}.get(kind) or (int if kind in INT_RANGES else None)
        self.low, self.high = INT_RANGES.get(kind, (0, 0))
        # null: nil for pointers, maps, slices, []byte and StrSlice; no effect on other values
        self.null_resets = isinstance(type, (Pointer, Slice, Map, StrSlice)) or kind == "bytes"
        self.null_is_plain = isinstance(type, Any)

    def __repr__(self) -> str:
        return f"<Field {self.name}>"


class Struct:
    """A Go struct's JSON fields; ``lookup`` finds a key the way encoding/json does."""

    __slots__ = ("name", "fields", "_folded", "_via")

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields: dict[str, Field] = {}
        self._folded: dict[str, Field] = {}
        self._via: dict[str, frozenset[str]] = {}

    def promoted_from(self, prefix: str) -> frozenset[str]:
        """The names of the fields promoted from the embedded struct ``prefix`` (and the structs it embeds)."""
        names = self._via.get(prefix)
        if names is None:
            names = self._via[prefix] = frozenset(
                name for name, field in self.fields.items() if field.via == prefix or field.via.startswith(prefix + "."))
        return names

    def add(self, field: Field) -> None:
        self.fields[field.name] = field
        self._folded.setdefault(fold(field.name), field)  # the first field in order wins, as in Go

    def lookup(self, key: str) -> Field | None:
        """An exact match first, else a case-insensitive one with Go's folding (see ``fold``)."""
        found = self.fields.get(key)
        if found is None:
            found = self._folded.get(fold(key))
        return found

    def __repr__(self) -> str:
        return f"<Struct {self.name}>"


GoType = Union[Scalar, Pointer, Slice, Array, Map, StrSlice, Any, Struct]

# encoding/json matches field names with bytes.EqualFold-style folding: ASCII letters ignore case, and
# the only non-ASCII runes that fold onto ASCII letters are KELVIN SIGN (to k) and LONG S (to s).
_FOLD = {**{c: c + 32 for c in range(ord("A"), ord("Z") + 1)}, 0x212A: ord("k"), 0x017F: ord("s")}


def fold(name: str) -> str:
    """The key as encoding/json compares it with a field name (Go 1.19, the Go of dockerd 20.10)."""
    return name.translate(_FOLD)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A request body dockerd decodes into ``type``; ``legacy`` names extra placement rules."""

    method: str
    regex: re.Pattern[str]
    type: GoType
    legacy: str = ""
    before: tuple[int, ...] | None = None  # decoded only for API versions below this one


@functools.lru_cache(maxsize=64)  # a handful of versions, read on every hooked body
def api_version(text: str) -> tuple[int, ...]:
    """moby's ``versions.compare`` reading of a version: dot-separated numbers, non-numbers as 0."""
    parts = []
    for part in text.split("."):
        parts.append(int(part) if part.isdigit() else 0)
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # "1.24.0" compares equal to "1.24"
    return tuple(parts)


class Schema:
    """The types and endpoints of one ``engine_schema.json``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.source: str = document["source"]
        self.structs: dict[str, Struct] = {name: Struct(name) for name in document["types"]}
        for name, spec in document["types"].items():
            for field in spec["struct"]:
                self.structs[name].add(Field(field["name"], self._type(field["type"]), field.get("via", "")))
        self.endpoints: dict[str, list[Endpoint]] = {}
        for spec in document["endpoints"]:
            glob = re.escape(spec["path"]).replace(r"\*", ".*")
            before = api_version(spec["before"]) if "before" in spec else None
            self.endpoints.setdefault(spec["method"], []).append(
                Endpoint(spec["method"], re.compile(glob + r"\Z"), self._type(spec["type"]), spec.get("legacy", ""),
                         before))

    def _type(self, spec: Any) -> GoType:
        if isinstance(spec, str):
            if spec == "strslice":
                return StrSlice()
            if spec == "any":
                return Any()
            return Scalar(spec)
        if "ref" in spec:
            return self.structs[spec["ref"]]
        if "ptr" in spec:
            return Pointer(self._type(spec["ptr"]))
        if "slice" in spec:
            return Slice(self._type(spec["slice"]))
        if "array" in spec:
            return Array(spec["array"][0], self._type(spec["array"][1]))
        if "map" in spec:
            return Map(self._type(spec["map"]))
        if "struct" in spec:  # an anonymous struct (struct{} in PortSet and Volumes)
            anonymous = Struct("struct{}")
            for field in spec["struct"]:
                anonymous.add(Field(field["name"], self._type(field["type"])))
            return anonymous
        raise ValueError(f"unknown type in the schema: {spec!r}")

    def endpoint(self, method: str, path: str, version: tuple[int, ...] | None) -> Endpoint | None:
        """The body type dockerd decodes for ``method`` on the unversioned ``path``, if it is one we know.

        ``version`` is the API version in the path; ``None`` (unversioned) is the daemon's own, the newest.
        """
        for endpoint in self.endpoints.get(method, ()):
            if endpoint.regex.match(path):
                if endpoint.before is not None and (version is None or version >= endpoint.before):
                    return None
                return endpoint
        return None


@functools.cache
def engine_schema() -> Schema:
    """The schema shipped with powerstrip (read once)."""
    text = resources.files("powerstrip.canonical").joinpath("engine_schema.json").read_text("utf-8")
    return Schema(json.loads(text))
