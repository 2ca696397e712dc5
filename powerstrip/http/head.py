"""Parsing HTTP/1.1 message heads (llhttp via httptools) and deciding how their bodies are framed.

No I/O here: callers hand in the exact head bytes (up to and including the blank line) and get a
value that keeps those bytes, so an unhooked message is forwarded exactly as it arrived.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httptools

HEAD_END = b"\r\n\r\n"
MAX_HEAD_SIZE = 64 * 1024
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the first one ends the head


def find_head_end(buffer: bytes | bytearray) -> int:
    """Where the head in ``buffer`` ends (just past its blank line), or -1 if it has not ended yet.

    Lines may end with CRLF or, as Go's server (dockerd) accepts, a bare LF: a head sent with bare
    LFs is answered like any other, not left waiting for a CRLF that never comes.
    """
    match = _BLANK_LINE.search(buffer, 0, MAX_HEAD_SIZE + 3)
    return match.end() if match is not None else -1


def with_crlf(raw: bytes) -> bytes:
    """``raw`` with every bare LF made CRLF: what llhttp parses and what the head keeps as ``raw`` (so
    the daemon is sent the head the routes judged)."""
    return raw if raw.count(b"\n") == raw.count(b"\r\n") else _BARE_LF.sub(b"\r\n", raw)


class MalformedMessage(ValueError):
    """The peer sent something that is not acceptable HTTP/1.1; ``status`` is the answer to give."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Framing(enum.Enum):
    """How a message body is delimited on the wire (RFC 9112 section 6)."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"


@dataclass(slots=True)
class _Collector:
    """httptools callback target: gathers the parts of one head."""

    url: bytes = b""
    headers: list[tuple[bytes, bytes]] | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers is None:
            self.headers = []
        self.headers.append((name, value))


@dataclass(slots=True)
class MessageHead:
    """What requests and responses share: the exact head bytes, the headers and the body framing.

    ``headers`` is split out of ``raw`` when first asked for: the relay never needs it.
    """

    version: str
    raw: bytes
    framing: Framing
    length: int
    keep_alive: bool
    parsed_headers: list[tuple[bytes, bytes]] | None = None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.parsed_headers is None:
            self.parsed_headers = [(m[1], m[2]) for m in _HEADER_FIELD.finditer(self.raw)]
        return self.parsed_headers

    def header(self, name: bytes) -> bytes | None:
        return find_header(self.headers, name)


@dataclass(slots=True, kw_only=True)
class RequestHead(MessageHead):
    method: str
    target: str

    @property
    def expects_continue(self) -> bool:
        value = self.header(b"expect")
        return value is not None and value.lower() == b"100-continue"


@dataclass(slots=True, kw_only=True)
class ResponseHead(MessageHead):
    status: int
    reason: bytes


_H = TypeVar("_H", RequestHead, ResponseHead)


def find_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _keeps_alive(version: str, connection_tokens: set[bytes]) -> bool:
    """Persistence from the version and Connection header alone (RFC 9112 section 9.3).

    llhttp's own answer also counts a body without framing as "close", which is wrong for a
    response to HEAD: Docker answers ``HEAD /_ping`` that way and clients reuse the connection.
    """
    if b"close" in connection_tokens:
        return False
    return version != "1.0" or b"keep-alive" in connection_tokens


def _feed(parser: httptools.HttpRequestParser | httptools.HttpResponseParser, raw: bytes) -> None:
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # Upgrade is honoured by the relay; the head itself parsed fine.
    except httptools.HttpParserError as exc:
        raise MalformedMessage(f"malformed HTTP message: {exc}") from None


@dataclass(slots=True)
class _FramingHeaders:
    """What one pass over the headers finds about framing and persistence (each name lowered once)."""

    encodings: list[bytes]
    lengths: set[bytes]
    connection: set[bytes]

    @classmethod
    def scan(cls, headers: list[tuple[bytes, bytes]]) -> _FramingHeaders:
        found = cls([], set(), set())
        for key, value in headers:
            lowered = key.lower()
            if lowered == b"content-length":
                found.lengths.update(part.strip() for part in value.split(b","))
            elif lowered == b"transfer-encoding":
                found.encodings.extend(part.strip().lower() for part in value.split(b","))
            elif lowered == b"connection":
                found.connection.update(token.strip().lower() for token in value.split(b","))
        return found

    def body_framing(self) -> tuple[Framing, int] | None:
        """Framing declared by Transfer-Encoding / Content-Length, or None when neither is present."""
        if self.encodings:
            if self.lengths:
                raise MalformedMessage("both Transfer-Encoding and Content-Length are set")
            if self.encodings[-1] != b"chunked":
                raise MalformedMessage("unsupported Transfer-Encoding (the last coding must be chunked)", 501)
            return Framing.CHUNKED, 0
        if not self.lengths:
            return None
        if len(self.lengths) > 1:
            raise MalformedMessage("conflicting Content-Length values")
        (length,) = self.lengths
        if not length.isdigit() or len(length) > 18:
            raise MalformedMessage("invalid Content-Length")
        value = int(length)
        return (Framing.LENGTH, value) if value else (Framing.NONE, 0)


# The fast path: heads made only of the common forms (a known method, a printable target, token header
# names, printable values, at most one Content-Length, Transfer-Encoding or Connection field, a final
# status) are read with two C-level regex passes; every other head goes to llhttp, which decides. The
# hypothesis tests (tests/unit/test_http_heads.py) check that both paths agree on every head the fast one
# takes. The quantifiers are possessive: a head either matches in one pass or goes to llhttp.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]++"
_FIELDS = rb"(?:" + _TOKEN + rb":[\t\x20-\x7e\x80-\xff]*+\r\n)*+\r\n"
_FAST_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) ([\x21-\x7e]++) HTTP/1\.([01])\r\n" + _FIELDS)
_FAST_RESPONSE = re.compile(rb"HTTP/1\.([01]) ([2-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*+)\r\n" + _FIELDS)
# Tier one, the heads most clients send: no Transfer-Encoding or Connection field and at most one
# Content-Length, whose digits the same pass captures (a negative lookahead keeps the framing names out of
# the other fields). Tier two reads the framing fields of the other common heads; llhttp the rest.
_OTHER_FIELDS = rb"(?:(?!(?i:content-length|transfer-encoding|connection):)" + _TOKEN + rb":[\t\x20-\x7e\x80-\xff]*+\r\n)*+"
_PLAIN_FIELDS = (_OTHER_FIELDS + rb"(?:(?i:content-length):[\t ]*+([0-9]{1,18})[\t ]*+\r\n" + _OTHER_FIELDS
                 + rb")?\r\n")
_PLAIN_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) ([\x21-\x7e]++) HTTP/1\.([01])\r\n"
                            + _PLAIN_FIELDS)
_PLAIN_RESPONSE = re.compile(rb"HTTP/1\.([01]) ([2-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*+)\r\n" + _PLAIN_FIELDS)
_FRAMING_FIELD = re.compile(rb"\n(content-length|transfer-encoding|connection):[\t ]*+([^\r]*)\r")  # on lowered
_HEADER_FIELD = re.compile(rb"\n(" + _TOKEN + rb"):[\t ]*([^\r]*)\r(?=\n)")  # values as llhttp gives them
_METHODS = {name.encode(): name for name in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")}


@dataclass(slots=True)
class _Fields:
    """The framing fields of a head the fast path may read (each at most once)."""

    length: int = -1          # Content-Length, -1 if absent
    chunked: bool = False     # Transfer-Encoding: chunked
    close: bool = False       # Connection: close
    keep_alive: bool = False  # Connection: keep-alive


_NO_FIELDS = _Fields()


def _fast_fields(raw: bytes) -> _Fields | None:
    """The framing fields of a head the fast path may read, or None (llhttp must)."""
    found = _FRAMING_FIELD.findall(raw.lower())
    if not found:
        return _NO_FIELDS  # most requests: no body, persistence by version
    length, chunked, connection = -1, False, b""
    seen = set()
    for name, value in found:
        if name in seen:
            return None  # a repeated framing field: llhttp's rules apply
        seen.add(name)
        value = value.rstrip(b" \t")
        if name == b"content-length":
            if not value.isdigit() or len(value) > 18:
                return None  # lists, signs, garbage, overflow: llhttp's errors
            length = int(value)
        elif name == b"transfer-encoding":
            if value != b"chunked":
                return None  # codings other than a plain chunked: llhttp decides
            chunked = True
        else:
            connection = value
    if chunked and length >= 0:
        return None  # both: refused, in llhttp's words
    if not connection:
        return _Fields(length, chunked)
    tokens = {token.strip() for token in connection.split(b",")}
    return _Fields(length, chunked, b"close" in tokens, b"keep-alive" in tokens)


def _persists(http11: bool, fields: _Fields) -> bool:
    """``_keeps_alive`` for a head the fast path read."""
    return not fields.close and (http11 or fields.keep_alive)


def _plain_request(match: re.Match[bytes], raw: bytes) -> RequestHead:
    length = int(match[4]) if match[4] is not None else 0
    http11 = match[3] == b"1"
    return RequestHead(
        method=_METHODS[match[1]], target=match[2].decode("latin-1"), version="1.1" if http11 else "1.0",
        raw=raw, framing=Framing.LENGTH if length else Framing.NONE, length=length, keep_alive=http11)


# Heads already read, by their exact bytes. A client polling an endpoint sends the same head again and
# again, and the daemon answers with the same head within the second of its Date; a head is a pure
# function of its bytes, so a remembered one is what a fresh parse gives (heads are never changed once
# made). Bounded: emptied when full, and long heads (auth headers) are not kept.
_MEMO_ENTRIES = 512
_MEMO_HEAD_SIZE = 2048
_REQUESTS: dict[bytes, RequestHead] = {}
_RESPONSES: dict[bytes, ResponseHead] = {}
_HEAD_RESPONSES: dict[bytes, ResponseHead] = {}  # answers to HEAD: no body, whatever the framing says


def _remember(memo: dict[bytes, _H], raw: bytes, head: _H) -> _H:
    if len(raw) <= _MEMO_HEAD_SIZE and type(raw) is bytes:
        if len(memo) >= _MEMO_ENTRIES:
            memo.clear()
        memo[raw] = head
    return head


# ``known_request(data)``: the head ``data`` is, if it is exactly a head read before (the usual request of a
# client that repeats itself: one head, no body, in one read); None says nothing, read ``data`` as usual.
# The memo's own ``get``: a C call, no Python frame, on every request (the memo is cleared, never replaced).
known_request: Callable[[bytes], RequestHead | None] = _REQUESTS.get


def _transfer_encoding_in_http10() -> MalformedMessage:
    """Go's server ignores Transfer-Encoding in an HTTP/1.0 request (golang/go#12785) and reads no body, so a
    relayed chunked body would reach dockerd as the next request, unjudged; RFC 9112 (6.1) calls the framing
    faulty. Refused, and the connection closed (an error answer always closes it)."""
    return MalformedMessage("Transfer-Encoding in an HTTP/1.0 request: dockerd (Go) ignores it and would read the "
                            "body as the next request; use HTTP/1.1 or Content-Length")


def parse_request_head(raw: bytes) -> RequestHead:
    """Parse a request head (``raw`` ends with the blank line)."""
    head = _REQUESTS.get(raw)
    return head if head is not None else _remember(_REQUESTS, raw, _parse_request_head(raw))


def _parse_request_head(raw: bytes) -> RequestHead:
    match = _PLAIN_REQUEST.fullmatch(raw)
    if match is not None:
        return _plain_request(match, raw)
    match = _FAST_REQUEST.fullmatch(raw)
    if match is not None:
        fields = _fast_fields(raw)
        if fields is not None:
            http11 = match[3] == b"1"
            if fields.chunked:
                if not http11:
                    raise _transfer_encoding_in_http10()
                framing, length = Framing.CHUNKED, 0
            elif fields.length > 0:
                framing, length = Framing.LENGTH, fields.length
            else:
                framing, length = Framing.NONE, 0
            return RequestHead(
                method=_METHODS[match[1]], target=match[2].decode("latin-1"), version="1.1" if http11 else "1.0",
                raw=raw, framing=framing, length=length, keep_alive=_persists(http11, fields))
    return parse_request_head_llhttp(with_crlf(raw))


def parse_request_head_llhttp(raw: bytes) -> RequestHead:
    """Parse a request head with llhttp: every form it accepts, its errors for the rest.

    Bare LFs must have been made CRLF (``with_crlf``): llhttp refuses them, Go's server does not.
    """
    collected = _Collector()
    parser = httptools.HttpRequestParser(collected)
    _feed(parser, raw)
    headers = collected.headers or []
    scanned = _FramingHeaders.scan(headers)
    version = parser.get_http_version()
    if scanned.encodings and version == "1.0":
        raise _transfer_encoding_in_http10()
    framing = scanned.body_framing() or (Framing.NONE, 0)
    return RequestHead(
        method=parser.get_method().decode("ascii"),
        target=collected.url.decode("latin-1"),
        version=version,
        parsed_headers=headers,
        raw=raw,
        framing=framing[0],
        length=framing[1],
        keep_alive=_keeps_alive(version, scanned.connection),
    )


def _plain_response(match: re.Match[bytes], raw: bytes, request_method: str) -> ResponseHead:
    status = int(match[2])
    http11 = match[1] == b"1"
    declared = match[4]
    if declared is None:
        framing, length = Framing.UNTIL_CLOSE, 0
    else:
        length = int(declared)
        framing = Framing.LENGTH if length else Framing.NONE
    if framing is not Framing.NONE and (status in (204, 304) or request_method == "HEAD"):
        framing, length = Framing.NONE, 0
    return ResponseHead(
        status=status, reason=match[3], version="1.1" if http11 else "1.0", raw=raw, framing=framing,
        length=length, keep_alive=http11 and framing is not Framing.UNTIL_CLOSE)


def parse_response_head(raw: bytes, request_method: str) -> ResponseHead:
    """Parse a response head; ``request_method`` matters because a HEAD response has no body."""
    memo = _HEAD_RESPONSES if request_method == "HEAD" else _RESPONSES
    head = memo.get(raw)
    return head if head is not None else _remember(memo, raw, _parse_response_head(raw, request_method))


def _parse_response_head(raw: bytes, request_method: str) -> ResponseHead:
    match = _PLAIN_RESPONSE.fullmatch(raw)
    if match is not None:
        return _plain_response(match, raw, request_method)
    match = _FAST_RESPONSE.fullmatch(raw)
    if match is not None:
        fields = _fast_fields(raw)
        if fields is not None:
            status = int(match[2])
            http11 = match[1] == b"1"
            if status in (204, 304) or request_method == "HEAD":
                framing, length = Framing.NONE, 0
            elif fields.chunked:
                framing, length = Framing.CHUNKED, 0
            elif fields.length > 0:
                framing, length = Framing.LENGTH, fields.length
            elif fields.length == 0:
                framing, length = Framing.NONE, 0
            else:
                framing, length = Framing.UNTIL_CLOSE, 0
            return ResponseHead(
                status=status, reason=match[3], version="1.1" if http11 else "1.0", raw=raw, framing=framing,
                length=length, keep_alive=_persists(http11, fields) and framing is not Framing.UNTIL_CLOSE)
    return parse_response_head_llhttp(with_crlf(raw), request_method)


def _response(status: int, reason: bytes, version: str, headers: list[tuple[bytes, bytes]] | None, raw: bytes,
              scanned: _FramingHeaders, request_method: str) -> ResponseHead:
    if status < 200 or status in (204, 304) or request_method == "HEAD":
        framing: tuple[Framing, int] = (Framing.NONE, 0)
    else:
        framing = scanned.body_framing() or (Framing.UNTIL_CLOSE, 0)
    return ResponseHead(
        status=status, reason=reason, version=version, parsed_headers=headers, raw=raw, framing=framing[0],
        length=framing[1],
        keep_alive=_keeps_alive(version, scanned.connection) and framing[0] is not Framing.UNTIL_CLOSE,
    )


def parse_response_head_llhttp(raw: bytes, request_method: str) -> ResponseHead:
    """Parse a response head with llhttp: every form it accepts, its errors for the rest."""
    collected = _Collector()
    parser = httptools.HttpResponseParser(collected)
    _feed(parser, raw)
    status = parser.get_status_code()
    headers = collected.headers or []
    status_line = raw.split(b"\r\n", 1)[0]
    reason = status_line.split(b" ", 2)[2] if status_line.count(b" ") >= 2 else b""
    return _response(status, reason, parser.get_http_version(), headers, raw, _FramingHeaders.scan(headers),
                     request_method)


def serialize_head(start_line: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """Build a head from a start line and headers, in the order given."""
    lines = [start_line]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + HEAD_END


def replace_headers(
    headers: list[tuple[bytes, bytes]], drop: tuple[bytes, ...], add: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` without the (lower-case) names in ``drop``, then ``add``."""
    kept = [(name, value) for name, value in headers if name.lower() not in drop]
    return kept + add
