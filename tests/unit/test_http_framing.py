"""The chunked scanner against llhttp (httptools) as the oracle, and head parsing rules."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerstrip.http.framing import ChunkedScanner
from powerstrip.http.head import (
    Framing,
    MalformedMessage,
    parse_request_head,
    parse_response_head,
)


def encode(chunks: list[bytes], extension: bool, trailer: bool) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";ext=1" if extension else b"", c) for c in chunks if c)
    return out + b"0\r\n" + (b"X-Trailer: yes\r\n" if trailer else b"") + b"\r\n"


def llhttp_payload(body: bytes) -> bytes:
    parts: list[bytes] = []

    class Callbacks:
        def on_body(self, data: bytes) -> None:
            parts.append(data)

    parser = httptools.HttpRequestParser(Callbacks())
    parser.feed_data(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    return b"".join(parts)


def scan(wire: bytes, cuts: list[int]) -> tuple[int, bytes, bool]:
    """Feed ``wire`` in pieces as the relay does: a line at a time, or the chunk data it still wants."""
    scanner = ChunkedScanner()
    consumed, payload, pos = 0, [], 0
    for cut in cuts + [len(wire)]:
        while pos < min(cut, len(wire)) and not scanner.done:
            want = scanner.data_remaining
            end = pos + want if want else wire.index(b"\n", pos) + 1
            piece = wire[pos:min(end, cut) if want else end]
            used, data = scanner.feed(piece)
            consumed += used
            payload.extend(data)
            pos += len(piece)
    return consumed, b"".join(payload), scanner.done


@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans(), st.booleans(),
       st.lists(st.integers(min_value=0, max_value=3000), max_size=5), st.binary(max_size=20))
def test_scanner_agrees_with_llhttp_and_stops_at_the_end(chunks, extension, trailer, cuts, following):
    wire = encode(chunks, extension, trailer)
    consumed, payload, done = scan(wire + following, sorted(cuts))
    assert done
    assert consumed == len(wire)  # the bytes that follow the body are left alone
    assert payload == llhttp_payload(wire) == b"".join(chunks)


@given(st.lists(st.binary(max_size=300), max_size=12), st.booleans(), st.booleans(),
       st.lists(st.integers(min_value=0, max_value=4000), max_size=6), st.binary(max_size=20))
def test_scanner_fed_as_reads_arrive_agrees_with_llhttp(chunks, extension, trailer, cuts, following):
    """Pieces cut anywhere, as socket reads are (whole chunks in one read take the scanner's fast path)."""
    wire = encode(chunks, extension, trailer)
    stream = wire + following
    scanner, consumed, payload, pos = ChunkedScanner(), 0, [], 0
    for cut in sorted(cuts) + [len(stream)]:
        if scanner.done or cut <= pos:
            continue
        used, data = scanner.feed(stream[pos:cut])
        consumed += used
        payload.extend(data)
        pos = cut
    assert scanner.done and consumed == len(wire)
    assert b"".join(payload) == llhttp_payload(wire) == b"".join(chunks)


@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=6), st.integers(0, 5),
       st.sampled_from([b"xx", b"\n", b"\r", b"", b"ab\r\n"]))
def test_a_chunk_whose_data_overruns_its_size_is_refused_whole_or_cut(chunks, which, extra):
    wire = bytearray(encode(chunks, False, False))
    # corrupt one chunk: data longer than its size line says (or a bad CRLF after it)
    at = 0
    for n, chunk in enumerate(chunks):
        head = b"%x\r\n" % len(chunk)
        if n == which % len(chunks):
            at += len(head) + len(chunk)  # where the corruption goes
            wire[at:at] = extra or b"Z"
            break
        at += len(head) + len(chunk) + 2
    scanner = ChunkedScanner()
    with pytest.raises(MalformedMessage):
        scanner.feed(bytes(wire))
    assert scanner.valid <= at  # what a relay passes on stops before the corruption


@pytest.mark.parametrize("wire", [b"zz\r\n", b"5\r\nabcdefg\r\n", b"5\n", b"-1\r\n", b"1" * 20 + b"\r\n"])
def test_scanner_refuses_malformed_chunks(wire):
    scanner = ChunkedScanner()
    with pytest.raises(MalformedMessage):
        pos = 0
        while pos < len(wire):
            want = scanner.data_remaining
            end = pos + want if want else (wire.find(b"\n", pos) + 1 or len(wire))
            scanner.feed(wire[pos:end])
            pos = end


def test_request_head_keeps_raw_bytes_and_framing():
    raw = b"POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: docker\r\nContent-Length: 12\r\n\r\n"
    head = parse_request_head(raw)
    assert (head.method, head.target, head.raw) == ("POST", "/v1.41/containers/create?name=x", raw)
    assert (head.framing, head.length, head.keep_alive) == (Framing.LENGTH, 12, True)


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: -5\r\n",
    b"Transfer-Encoding: gzip\r\n",
])
def test_ambiguous_framing_is_refused(headers):
    with pytest.raises(MalformedMessage):
        parse_request_head(b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")


def test_response_framing_rules():
    assert parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "HEAD").framing is Framing.NONE
    assert parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HEAD").keep_alive
    hijack = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n", "POST")
    assert (hijack.framing, hijack.keep_alive) == (Framing.UNTIL_CLOSE, False)
    upgraded = parse_response_head(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", "POST")
    assert (upgraded.status, upgraded.reason, upgraded.framing) == (101, b"UPGRADED", Framing.NONE)
    closing = parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", "GET")
    assert not closing.keep_alive
