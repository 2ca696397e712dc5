"""Fuzzing the parts that read what clients send: the head parser, the chunked scanner, the canonicaliser.

Bounded here (``make test``); ``make fuzz`` runs the same properties with many more examples
(``POWERSTRIP_FUZZ_EXAMPLES``). Each property: no exception but the documented refusal, no hang
(every input is finite and each step consumes), and memory bounded by the input.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerstrip.canonical import BodyRefused, canonicalize
from powerstrip.http.framing import ChunkedScanner
from powerstrip.http.head import MalformedMessage, parse_request_head

EXAMPLES = int(os.environ.get("POWERSTRIP_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CREATE_KEYS = ["Image", "image", "IMAGE", "HostConfig", "hostconfig", "Privileged", "privileged", "\u017fecurityOpt",
               "SecurityOpt", "Binds", "Mounts", "CapAdd", "capadd", "NetworkMode", "PidMode", "User", "user", "Cmd",
               "Labels", "Env", "Memory", "Cpuset", "Unknown", "unknown", "NetworkingConfig", "EndpointsConfig"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.lists(st.tuples(st.sampled_from(CREATE_KEYS) | st.text(max_size=6), inner), max_size=5)),
    max_leaves=20)


def to_json(value: object) -> str:
    """Lists of pairs become objects with those (possibly repeated) keys."""
    if isinstance(value, list) and value and all(isinstance(item, tuple) for item in value):
        return "{" + ",".join(f"{json.dumps(key)}:{to_json(item)}" for key, item in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(CREATE_KEYS), values), max_size=8))
def test_canonical_bodies_are_refused_cleanly_or_a_fixed_point(pairs: list) -> None:
    body = to_json(pairs) if pairs else "{}"
    for path in ("/v1.41/containers/create", "/v1.23/containers/x/start", "/containers/x/exec", "/v1.41/other"):
        try:
            found = canonicalize("POST", path, body)
        except BodyRefused:
            continue
        assert found is not None
        again = canonicalize("POST", path, found.text)
        assert again is not None and again.text == found.text  # what the daemon gets reads back the same


@FUZZ
@given(st.text(max_size=200))
def test_any_text_is_canonical_or_refused(text: str) -> None:
    try:
        canonicalize("POST", "/v1.41/containers/create", text)
    except BodyRefused:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_head_parser_answers_or_refuses(raw: bytes) -> None:
    for head in (raw, b"POST /v1.41/containers/create HTTP/1.1\r\n" + raw + b"\r\n\r\n"):
        try:
            parse_request_head(head)
        except MalformedMessage as exc:
            assert 400 <= exc.status <= 599


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_chunked_scanner_consumes_or_refuses(pieces: list[bytes]) -> None:
    scanner = ChunkedScanner()
    try:
        for piece in pieces:
            used, _ = scanner.feed(piece)
            assert 0 <= used <= len(piece)
            if scanner.done:
                break
    except MalformedMessage:
        pass
