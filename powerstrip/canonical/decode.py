"""Decoding JSON the way dockerd's Go code does, into one canonical Python object.

Two steps. ``parse`` reads the text strictly (what Go's scanner refuses, and what we refuse on top:
trailing data, a BOM, NaN, depth over ``MAX_DEPTH``), keeping every object as its key/value pairs so
duplicates are still visible. ``decode`` then walks those pairs with a schema type, applying
encoding/json's rules:

- struct fields match keys exactly, else case-insensitively with Go's folding (``schema.fold``);
- a repeated key decodes into the same value: a struct (or a pointer to one) keeps the fields the earlier
  object set, a scalar takes the later value, ``null`` has no effect on a value that cannot be nil and
  resets one that can (pointer, map, slice);
- map keys are exact, a repeated map key takes the later value whole;
- values of the wrong JSON type, integers out of range or written with a fraction, bad base64: refused,
  as dockerd refuses them.

What has no single meaning is refused (``Ambiguous``) rather than guessed: two spellings of one field with
different values, a slice or array given twice (Go would decode the second into the first's elements),
and two keys of an unknown field (or inside a value we keep as plain JSON) that are duplicates or fold
together with different values. Fields the schema does not know are kept as plain JSON.

The canonical object has each known field under its canonical name, at most once, without the ``null``s
that have no effect; serialised (``serialise``) it is what the daemon is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any as AnyValue

import orjson

from powerstrip.canonical.schema import (
    FLOAT_LIMITS,
    INT_RANGES,
    Any,
    Array,
    GoType,
    Map,
    Pointer,
    Scalar,
    Slice,
    StrSlice,
    Struct,
    fold,
)

MAX_DEPTH = 64  # nesting of objects and arrays; Docker's own bodies stay under 10


class BodyRefused(ValueError):
    """A request body that cannot be given to hooks and the daemon with one meaning (the client's fault)."""


class Undecodable(BodyRefused):
    """Not JSON as dockerd reads it: syntax, encoding, depth, types, ranges."""


class Ambiguous(BodyRefused):
    """JSON that could mean two things: the gateway will not pick one."""


# A JSON object as parsed: its (key, value) pairs in order, duplicates kept. A tuple, so it cannot be
# mistaken for an array (a list), and json's C scanner builds it without calling back into Python.
Pairs = tuple


class StructValue(dict):  # type: ignore[type-arg]
    """A decoded struct: canonical field name → value, and the key spelling that set each field.

    Made by ``struct_value`` (dict's own constructor, no Python ``__init__``: one is made per struct per body).
    A struct whose keys were all its fields' exact names (the usual body) keeps only those keys: its
    ``spelling`` (each name spelled as itself) is built if something asks for it, which is rare.
    """

    __slots__ = ("_spelling", "_exact")
    _spelling: dict[str, str] | None
    _exact: dict[str, AnyValue] | None

    @property
    def spelling(self) -> dict[str, str]:
        if self._spelling is None:
            exact = self._exact or {}
            self._spelling, self._exact = dict(zip(exact, exact)), None
        return self._spelling

    def copy(self) -> StructValue:  # type: ignore[override]
        return struct_value(self, dict(self.spelling))


def struct_value(items: AnyValue = (), spelling: dict[str, str] | None = None) -> StructValue:
    value = StructValue(items)
    value._spelling = {} if spelling is None else spelling
    value._exact = None
    return value


def _exactly_spelled(given: dict[str, AnyValue]) -> StructValue:
    """A struct value of ``given``, whose keys are all exact field names (``spelling`` derived from them)."""
    value = StructValue(given)
    value._spelling = None
    value._exact = given
    return value


MISSING: AnyValue = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


def _no_constant(name: str) -> None:
    raise Undecodable(f"{name} is not a JSON number (dockerd refuses it)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Undecodable(f"the number {text[:40]} is out of range")
    return value


# One decoder for every body: ``json.loads`` with hooks would build a new one (and its scanner) per call,
# about a tenth of what parsing a create body costs.
_DECODER = json.JSONDecoder(object_pairs_hook=Pairs, parse_constant=_no_constant, parse_float=_finite)


def parse(text: str) -> AnyValue:
    """The JSON value of ``text``, objects as ``Pairs``; ``Undecodable`` for anything Go or we refuse."""
    if text.startswith("\ufeff"):
        raise Undecodable("the body starts with a byte order mark, which dockerd does not read as JSON")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            raise Undecodable(f"the body has data after its JSON value (at offset {exc.pos}), which dockerd would "
                              "silently ignore") from None
        raise Undecodable(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


Where = tuple  # a field path, built cheaply as (parent, name) and rendered only for an error message


def render(where: Where) -> str:
    """``("HostConfig", "Privileged")`` chains → ``HostConfig.Privileged``; ``()`` is the body itself."""
    parts: list[str] = []
    while where:
        where, name = where
        parts.append(name)
    text = ""
    for part in reversed(parts):
        text += part if part.startswith("[") or not text else f".{part}"
    return text or "the body"


def _kind(raw: AnyValue) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, (int, float)):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    return "an object" if isinstance(raw, Pairs) else "an array"


def _mismatch(raw: AnyValue, want: str, where: Where) -> Undecodable:
    return Undecodable(f"{render(where)}: {_kind(raw)} cannot be decoded as {want} (dockerd refuses it)")


def _too_deep() -> Undecodable:
    return Undecodable(f"the body is nested deeper than {MAX_DEPTH} levels")


def zero(typ: GoType) -> AnyValue:
    """Go's zero value of ``typ`` as the canonical object writes it (nil pointers, maps, slices: None)."""
    if isinstance(typ, Scalar):
        if typ.kind == "bool":
            return False
        if typ.kind == "string":
            return ""
        if typ.kind == "bytes":
            return None
        return 0.0 if typ.kind.startswith("float") else 0
    if isinstance(typ, Struct):
        return struct_value()
    if isinstance(typ, Array):
        return [zero(typ.elem) for _ in range(typ.size)]
    return None


def _scalar(typ: Scalar, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    kind = typ.kind
    if raw is None:
        return None if kind == "bytes" else current  # null: no effect on a value, nil for []byte
    if kind == "string":
        if type(raw) is str:
            return raw
        raise _mismatch(raw, "a string", where)
    if kind == "bool":
        if type(raw) is bool:
            return raw
        raise _mismatch(raw, "a boolean", where)
    if kind == "bytes":
        if type(raw) is not str:
            raise _mismatch(raw, "base64 text", where)
        try:
            base64.b64decode(raw.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            raise Undecodable(f"{render(where)}: not valid base64 (dockerd refuses it)") from None
        return raw
    if type(raw) is int:
        low, high = INT_RANGES.get(kind, (-math.inf, math.inf))
        if low <= raw <= high:
            return raw
        raise Undecodable(f"{render(where)}: {raw} is out of range for {kind} (dockerd refuses it)")
    if type(raw) is not float:
        raise _mismatch(raw, f"a number ({kind})", where)
    if kind not in FLOAT_LIMITS:
        raise Undecodable(f"{render(where)}: {raw!r} is not an integer ({kind}); dockerd refuses a fraction or "
                          "exponent")
    if abs(raw) > FLOAT_LIMITS[kind]:
        raise Undecodable(f"{render(where)}: {raw} is out of range for {kind} (dockerd refuses it)")
    return raw


def plain(raw: AnyValue, where: Where, depth: int) -> AnyValue:
    """A value kept as JSON (unknown fields, ``Any``): objects as dicts, refusing duplicates that disagree."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(raw, Pairs):
        result: dict[str, AnyValue] = {}
        folded: dict[str, str] = {}
        for key, value in raw:
            value = plain(value, (where, key), depth + 1)
            other = folded.setdefault(fold(key), key)
            if (key in result and result[key] != value) or (other != key and result.get(other, value) != value):
                raise Ambiguous(f"{render(where)}: keys {other!r} and {key!r} give the same field two values; "
                                "which one a daemon takes depends on its Go types")
            result[key] = value
        return result
    if isinstance(raw, list):
        return [plain(item, (where, f"[{index}]"), depth + 1) for index, item in enumerate(raw)]
    return raw


def decode(typ: GoType, current: AnyValue, raw: AnyValue, where: Where = (), depth: int = 0) -> AnyValue:
    """``raw`` decoded into a value of ``typ`` that holds ``current`` (``MISSING`` when unset) already."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    return _DECODERS[type(typ)](typ, current, raw, where, depth)


def _pointer(typ: Pointer, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    if raw is None:
        return MISSING  # nil
    return decode(typ.elem, current, raw, where, depth)


def _map(typ: Map, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    if raw is None:
        return MISSING
    if type(raw) is not Pairs:
        raise _mismatch(raw, "an object", where)
    result = dict(current) if current is not MISSING else {}
    elem = typ.elem
    if type(elem) is Scalar and elem.kind == "string" and all(type(value) is str for _, value in raw):
        result.update(raw)  # map[string]string given strings: Labels, Sysctls, options
        return result
    for key, value in raw:
        item = decode(elem, MISSING, value, (where, f"[{key!r}]"), depth + 1)
        result[key] = zero(elem) if item is MISSING else item
    return result


def _sequence(typ: Slice | Array, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    if raw is None:
        return MISSING if type(typ) is Slice else current
    if type(raw) is not list:
        raise _mismatch(raw, "an array", where)
    if current is not MISSING and current:
        raise Ambiguous(f"{render(where)}: given twice; dockerd would decode the second array into the first "
                        "one's elements, so the gateway refuses it")
    elem = typ.elem
    if type(elem) is Scalar and elem.kind == "string" and type(typ) is Slice \
            and all(type(value) is str for value in raw):
        return list(raw)  # []string given strings: Env, Binds, Dns, ...
    items = []
    for index, value in enumerate(raw):
        item = decode(elem, MISSING, value, (where, f"[{index}]"), depth + 1)
        items.append(zero(elem) if item is MISSING else item)
    if type(typ) is Array:
        del items[typ.size:]
        items.extend(zero(elem) for _ in range(typ.size - len(items)))
    return items


def _strslice(typ: StrSlice, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    if raw is None:
        return MISSING
    if type(raw) is str:
        return [raw]
    if type(raw) is list and all(item is None or type(item) is str for item in raw):
        return ["" if item is None else item for item in raw]
    raise _mismatch(raw, "a string or an array of strings", where)


def _any(typ: Any, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    return plain(raw, where, depth)


def _struct(typ: Struct, current: AnyValue, raw: AnyValue, where: Where, depth: int) -> AnyValue:
    if raw is None:
        return current  # no effect on a struct value
    if type(raw) is not Pairs:
        raise _mismatch(raw, f"an object ({typ.name})", where)
    fields = typ.fields
    if current is MISSING:
        given = dict(raw)
        if len(given) == len(raw):
            exact = _plain_struct(typ, given, where, depth)
            if exact is not None:
                return exact
    result = current.copy() if current is not MISSING else struct_value()
    spelling = result.spelling
    unknown_folds: dict[str, str] = {}
    for key, value in raw:
        field = fields.get(key) or typ.lookup(key)
        if field is None:
            _unknown(result, unknown_folds, key, plain(value, (where, key), depth + 1), where)
            continue
        name = field.name
        before = result.get(name, MISSING)
        cls = type(value)
        if cls is field.fast and (cls is not int or field.low <= value <= field.high):
            after = value  # the common case: a string, boolean or in-range integer for such a field
        elif value is None and not field.null_is_plain:
            after = MISSING if field.null_resets else before
        else:
            after = _DECODERS[type(field.type)](field.type, before, value, (where, name), depth + 1)
        spelled = spelling.setdefault(name, key)
        if spelled != key and after != before:
            raise Ambiguous(f"{render((where, name))}: set by the keys {spelled!r} and {key!r} with different "
                            "values; dockerd matches field names without regard to case, so the gateway refuses "
                            "to pick one")
        if after is MISSING:
            result.pop(name, None)
        else:
            result[name] = after
    return result


def _plain_struct(typ: Struct, given: dict[str, AnyValue], where: Where, depth: int) -> StructValue | None:
    """``_struct`` for the usual object: a new value, every key a field's exact name, none repeated.

    Nothing can be ambiguous then, so each value is checked once with no bookkeeping, and only the values
    that need decoding are replaced; the docker CLI's bodies all take this path. ``None`` at the first key
    that is not a field's exact name: ``_struct`` reads the object then (the values before that key decode
    the same way there, errors included).
    """
    fields = typ.fields
    result = _exactly_spelled(given)
    for key, value in given.items():
        field = fields.get(key)
        if field is None:
            return None
        cls = type(value)
        if cls is field.fast and (cls is not int or field.low <= value <= field.high):
            continue
        if value is None and not field.null_is_plain:
            del result[key]  # nil, or no effect on a zero value: unset either way
            continue
        after = _DECODERS[type(field.type)](field.type, MISSING, value, (where, key), depth + 1)
        if after is MISSING:
            del result[key]
        else:
            result[key] = after
    return result


_DECODERS: dict[type, AnyValue] = {Scalar: _scalar, Struct: _struct, Pointer: _pointer, Map: _map, Slice: _sequence,
                                   Array: _sequence, StrSlice: _strslice, Any: _any}


def _unknown(result: StructValue, folds: dict[str, str], key: str, value: AnyValue, where: Where) -> None:
    """A field the schema does not know: kept, unless another key is the same field for a daemon that knows it.

    ``folds`` maps each folded name to the spelling kept in ``result``; one spelling is forwarded.
    """
    folded = fold(key)
    other = folds.get(folded)
    if other is not None:
        if result[other] != value:
            raise Ambiguous(f"{render(where)}: keys {other!r} and {key!r} give the unknown field two values; a "
                            "daemon that knows the field would take one of them, so the gateway refuses to pick")
        del result[other]
    folds[folded] = key
    result[key] = value


def serialise(value: AnyValue) -> str:
    """The canonical JSON text: compact, strict UTF-8 (a lone surrogate is refused), integers within 64 bits.

    orjson writes it (a tenth of the stdlib's time on a create body); ``parse`` has refused NaN and
    infinities already, so orjson's writing of those as null never happens.
    """
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError as exc:
        if "surrogates" in str(exc):
            raise Undecodable("the body has a lone UTF-16 surrogate (\\ud800-\\udfff) in a string; dockerd would "
                              "replace it, so the gateway refuses it") from None
        if "64-bit" in str(exc):
            raise Undecodable("the body has an integer beyond 64 bits, which no Engine API field holds") from None
        raise Undecodable(f"the body cannot be written as JSON: {exc}") from None
