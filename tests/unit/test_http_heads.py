"""The fast head parser against llhttp (httptools) as the oracle: on every head both read, they agree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerstrip.http.head import (
    MalformedMessage,
    find_head_end,
    parse_request_head,
    parse_request_head_llhttp,
    parse_response_head,
    parse_response_head_llhttp,
)

TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                min_size=1, max_size=12).map(str.encode)
VALUE = st.binary(max_size=20).map(lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128))
FRAMING = st.sampled_from([
    b"Content-Length: 5", b"content-length: 0", b"Content-Length:  12 ", b"Content-Length: 5, 5",
    b"Content-Length: x", b"Transfer-Encoding: chunked", b"transfer-encoding: gzip, chunked",
    b"Transfer-Encoding: gzip", b"Connection: close", b"connection: keep-alive", b"Connection: Upgrade",
    b"CONTENT-LENGTH:7", b"Content-Length: 0012", b"Content-Length: 1234567890123456789", b"Content-Length: -1",
    b"Content-Lengthy: 3", b"X-Content-Length: 3",
])
FIELD = st.one_of(st.tuples(TOKEN, VALUE).map(lambda nv: nv[0] + b": " + nv[1]), FRAMING)


def _fields(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _outcome(parse, *args):
    try:
        head = parse(*args)
    except MalformedMessage as exc:
        return ("error", exc.status)
    common = (head.version, head.headers, head.framing, head.length, head.keep_alive, head.raw)
    if hasattr(head, "method"):
        return (head.method, head.target, *common)
    return (head.status, head.reason, *common)


@settings(max_examples=400)
@given(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"]),
       st.text(alphabet="/abcxyz09?=&%-._~:@", min_size=1, max_size=20).map(lambda t: ("/" + t).encode()),
       st.sampled_from([b"1.1", b"1.0"]), st.lists(FIELD, max_size=6))
def test_fast_request_heads_agree_with_llhttp(method, target, version, fields):
    raw = method + b" " + target + b" HTTP/" + version + b"\r\n" + _fields(fields)
    assert _outcome(parse_request_head, raw) == _outcome(parse_request_head_llhttp, raw)


@settings(max_examples=400)
@given(st.integers(100, 599), st.sampled_from([b"OK", b"Not Found", b"", b"Any \x80 reason"]),
       st.sampled_from([b"1.1", b"1.0"]), st.lists(FIELD, max_size=6), st.sampled_from(["GET", "HEAD"]))
def test_fast_response_heads_agree_with_llhttp(status, reason, version, fields, method):
    raw = b"HTTP/" + version + b" %d " % status + reason + b"\r\n" + _fields(fields)
    assert _outcome(parse_response_head, raw, method) == _outcome(parse_response_head_llhttp, raw, method)


def test_bare_lf_heads_are_read_as_crlf_ones():
    head = parse_request_head(b"GET /_ping HTTP/1.1\nHost: docker\n\n")
    assert (head.method, head.target, head.raw) == ("GET", "/_ping", b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")


def test_the_head_ends_at_the_first_blank_line_whatever_the_line_endings():
    for raw in (b"GET / HTTP/1.1\r\nA: b\r\n\r\n", b"GET / HTTP/1.1\nA: b\n\n", b"GET / HTTP/1.1\r\nA: b\n\r\n"):
        assert find_head_end(raw + b"body") == len(raw)
    assert find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n") == -1


def test_the_parse_memo_is_bounded_and_keeps_no_long_heads():
    from powerstrip.http import head as heads

    for n in range(heads._MEMO_ENTRIES * 2):
        parse_request_head(b"GET /containers/%d/json HTTP/1.1\r\nHost: docker\r\n\r\n" % n)
    assert 0 < len(heads._REQUESTS) <= heads._MEMO_ENTRIES
    long_head = b"GET /_ping HTTP/1.1\r\nX-Registry-Auth: " + b"a" * heads._MEMO_HEAD_SIZE + b"\r\n\r\n"
    assert parse_request_head(long_head).target == "/_ping"
    assert long_head not in heads._REQUESTS


def test_a_remembered_response_head_depends_on_the_request_method():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert parse_response_head(raw, "GET").length == 5
    assert parse_response_head(raw, "HEAD").framing.value == "none"
    assert parse_response_head(raw, "GET").length == 5


@pytest.mark.parametrize("raw", [
    b"GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",   # the fast path
    b"GET /_ping HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\nX: 1\r\nX: 2\r\n\r\n",        # llhttp's
    b"POST /_ping HTTP/1.0\nTransfer-Encoding: chunked\n\n",                                    # bare LF
])
def test_transfer_encoding_in_an_http10_request_is_refused(raw):
    """Go reads no body for it (it ignores the field), so the chunks would reach dockerd as a request."""
    with pytest.raises(MalformedMessage, match="HTTP/1.0"):
        parse_request_head(raw)
