"""The exchange scope: end callbacks called exactly once however a hooked exchange ends, and warnings that
reach the client as Warning headers. ``exchange.hooked`` runs for real, over in-memory streams (no sockets)."""

from __future__ import annotations

import asyncio
import email.parser
import logging

import pytest

from powerstrip.config.model import AdapterSpec
from powerstrip.config.routes import Route
from powerstrip.hooks.chain import ChainRun
from powerstrip.hooks.inprocess import InProcessAdapter
from powerstrip.hooks.model import ClientRequest
from powerstrip.hooks.scope import MAX_WARNING_CHARS, MAX_WARNINGS, ExchangeScope
from powerstrip.http.head import parse_request_head, parse_response_head
from powerstrip.http.machine import Judged
from powerstrip.http.outcome import Outcome, Side
from powerstrip.http.warning import warning_lines, warning_value, with_warnings
from powerstrip.proxy import exchange
from powerstrip.proxy.bridge import BridgeReader, Stream, TransportWriter
from powerstrip.proxy.upstream import DaemonUnavailable
from powerstrip.sdk import Adapter, Reject, Request

# --- the scope ------------------------------------------------------------------------------------


def test_end_calls_each_callback_once_even_when_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    scope, calls = ExchangeScope(ends=True), []
    assert scope.on_end(lambda: calls.append("a"))
    assert scope.on_end(lambda: 1 / 0)
    assert scope.on_end(lambda: calls.append("b"))
    scope.end()
    scope.end()
    assert calls == ["a", "b"] and "an exchange end callback failed" in caplog.text
    assert scope.on_end(lambda: calls.append("late"))  # after the end: called at once, not kept
    assert calls == ["a", "b", "late"]


def test_a_scope_nothing_ends_refuses_callbacks() -> None:
    scope = ExchangeScope()  # an adapter served over HTTP: the gateway never tells it the end
    assert not scope.on_end(lambda: pytest.fail("must never be called"))
    scope.end()


def test_warnings_are_bounded_in_count_and_length() -> None:
    scope = ExchangeScope()
    scope.warn("x" * 1000)
    for number in range(MAX_WARNINGS + 3):
        scope.warn(f"w{number}")
    assert len(scope.warnings) == MAX_WARNINGS and scope.dropped == 4
    assert len(scope.warnings[0]) == MAX_WARNING_CHARS and scope.warnings[0].endswith("...")


# --- the header -----------------------------------------------------------------------------------


def _parsed(lines: bytes) -> list[str]:
    """The Warning values as an HTTP client's header parser reads them."""
    message = email.parser.BytesParser().parsebytes(b"X: y\r\n" + lines + b"\r\n")
    return message.get_all("Warning") or []


@pytest.mark.parametrize(("text", "wire"), [
    ("image not pinned", b'299 powerstrip "image not pinned"'),
    ('say "hi"', b'299 powerstrip "say \\"hi\\""'),
    ("back\\slash", b'299 powerstrip "back\\\\\\\\slash"'),  # \ doubled as in the log, then quoted
    ("ok\r\nX-Injected: 1", b'299 powerstrip "ok\\\\x0d\\\\x0aX-Injected: 1"'),
    ("nul\x00 del\x7f nel\x85 ls\u2028", b'299 powerstrip "nul\\\\x00 del\\\\x7f nel\\\\x85 ls\\\\u2028"'),
    ("caf\u00e9", '299 powerstrip "caf\u00e9"'.encode()),
])
def test_warning_values_are_quoted_and_escaped(text: str, wire: bytes) -> None:
    assert warning_value(text) == wire
    assert b"\r" not in wire and b"\n" not in wire


def test_no_warning_text_can_add_a_header() -> None:
    lines = warning_lines(["a\r\nSet-Cookie: x", "b\nContent-Length: 0", 'c"\r\n\r\nHTTP/1.1 200 OK'])
    assert lines.count(b"\r\n") == 3 and lines.count(b"\n") == 3
    assert len(_parsed(lines)) == 3 and all(value.startswith('299 powerstrip "') for value in _parsed(lines))


def test_dropped_warnings_are_counted_in_a_last_header() -> None:
    values = _parsed(warning_lines(["one"], dropped=5))
    assert values == ['299 powerstrip "one"', '299 powerstrip "5 more warning(s) not kept: at most 1 for one request"']


def test_headers_go_after_the_status_line_and_the_rest_stays() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    assert with_warnings(head, b"") is head
    assert with_warnings(head, b"Warning: w\r\n") == b"HTTP/1.1 200 OK\r\nWarning: w\r\nContent-Length: 2\r\n\r\n{}"


# --- the chain ------------------------------------------------------------------------------------


def test_the_chain_names_logs_and_records_each_adapters_warnings(caplog: pytest.LogCaptureFixture) -> None:
    first, second = Adapter("first"), Adapter("second")

    @first.pre("* /*")
    def careful(request: Request) -> None:
        request.warn("image not pinned")

    @second.pre("* /*")
    def refuse(request: Request) -> None:
        request.warn("and this one refuses")
        raise Reject(403, "no")

    specs = (AdapterSpec("a", "python:x:y"), AdapterSpec("b", "python:x:y"))
    run = ChainRun({"a": InProcessAdapter(specs[0], first), "b": InProcessAdapter(specs[1], second)})
    request = ClientRequest("GET", "/containers/json", None, uid="u-1")
    with caplog.at_level(logging.WARNING), pytest.raises(Exception, match="adapter b: no"):
        asyncio.run(run.pre(specs, request))
    assert request.scope.warnings == ["adapter a: image not pinned", "adapter b: and this one refuses"]
    assert [(r.outcome, r.warnings) for r in run.records] == [
        ("ok", ("adapter a: image not pinned",)), ("rejected", ("adapter b: and this one refuses",))]
    assert "adapter a warns (uid u-1): image not pinned" in caplog.text


def test_the_scope_survives_an_adapter_that_returns_a_new_request() -> None:
    class Fresh:
        name = "fresh"

        async def pre_hook(self, request: ClientRequest) -> ClientRequest:
            return ClientRequest(request.method, "/other", request.body)  # as a v1 reply is parsed

    sent = ClientRequest("GET", "/x", None)
    forwarded = asyncio.run(ChainRun({"f": Fresh()}).pre((AdapterSpec("f", "http://f/"),), sent))  # type: ignore[dict-item]
    assert forwarded.request == "/other" and forwarded.scope is sent.scope


# --- a real hooked exchange over in-memory streams ---------------------------------------------------


class _Transport:
    """What a TransportWriter writes to; collects the bytes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.data += data

    def write_eof(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _stream() -> tuple[Stream, _Transport]:
    transport = _Transport()
    reader = BridgeReader()
    reader.set_transport(transport)  # type: ignore[arg-type]
    return Stream(reader, TransportWriter(transport)), transport


class _Link:
    """The daemon side: a stream the test feeds, or a daemon that cannot be reached."""

    def __init__(self, answer: bytes | None = b"", down: bool = False) -> None:
        self.stream, self.sent = _stream()
        self.down = down
        if answer:
            self.stream.reader.feed_data(answer)

    async def connect(self) -> Stream:
        if self.down:
            raise DaemonUnavailable("powerstrip cannot connect to the Docker daemon (test: it is down)")
        return self.stream

    def discard(self) -> None:
        pass


LIMITS = exchange.Limits(max_body_size=1 << 20, body_timeout=5.0, stream_grace=0.2, hijack_linger=0.1)
SPEC = AdapterSpec("cap", "python:x:y")


def _slot_taker(ends: list[str], refuse: bool = False, fail: bool = False) -> Adapter:
    """An SDK adapter that takes something per request and gives it back at the exchange's end."""
    adapter = Adapter("cap")

    @adapter.pre("* /*")
    def take(request: Request) -> None:
        assert request.on_end(lambda: ends.append(request.uid))
        request.warn('slow down "please"')
        if refuse:
            raise Reject(429, "too many")
        if fail:
            raise RuntimeError("a bug")

    return adapter


async def _exchange(make_link, adapter: Adapter, request: bytes = b"GET /v1.41/containers/json HTTP/1.1\r\n"
                    b"Host: docker\r\n\r\n") -> tuple[_Transport, Stream]:
    link, (client, written) = make_link(), _stream()  # streams need the running loop
    head = parse_request_head(request)
    await exchange.hooked(client, exchange.Peer(), link, head, Route((SPEC,), ()),  # type: ignore[arg-type]
                          {"cap": InProcessAdapter(SPEC, adapter)}, LIMITS)
    return written, client


def _status_and_warnings(data: bytes) -> tuple[bytes, list[str]]:
    head = data.split(b"\r\n\r\n", 1)[0]
    status, _, fields = head.partition(b"\r\n")
    return status, _parsed(fields + b"\r\n")


def test_an_answered_exchange_ends_once_and_carries_the_warning_header() -> None:
    ends: list[str] = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
    written, _ = asyncio.run(_exchange(lambda: _Link(answer), _slot_taker(ends)))
    status, warnings = _status_and_warnings(bytes(written.data))
    assert status == b"HTTP/1.1 200 OK" and warnings == ['299 powerstrip "adapter cap: slow down \\"please\\""']
    assert bytes(written.data).endswith(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
    assert len(ends) == 1


@pytest.mark.parametrize(("link", "kwargs", "status"), [
    (lambda: _Link(down=True), {}, b"HTTP/1.1 502 Bad Gateway"),
    (lambda: _Link(b""), {"refuse": True}, b"HTTP/1.1 429 Too Many Requests"),
    (lambda: _Link(b""), {"fail": True}, b"HTTP/1.1 502 Bad Gateway"),
])
def test_refused_failed_and_undeliverable_exchanges_end_once_with_the_warning(link, kwargs, status) -> None:
    ends: list[str] = []
    written, _ = asyncio.run(_exchange(link, _slot_taker(ends, **kwargs)))
    found, warnings = _status_and_warnings(bytes(written.data))
    assert found == status and warnings == ['299 powerstrip "adapter cap: slow down \\"please\\""']
    assert len(ends) == 1


def test_a_client_that_leaves_mid_stream_ends_the_exchange_once() -> None:
    ends: list[str] = []

    async def scenario() -> None:
        link = _Link(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\n{}\n\r\n")  # an events stream: a chunk, then nothing for hours
        client, written = _stream()
        head = parse_request_head(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        task = asyncio.ensure_future(exchange.hooked(client, exchange.Peer(), link, head, Route((SPEC,), ()),  # type: ignore[arg-type]
                                                     {"cap": InProcessAdapter(SPEC, _slot_taker(ends))}, LIMITS))
        await asyncio.sleep(0.2)
        assert b"{}\n" in written.data and ends == []  # streaming, the slot still held
        client.reader.feed_eof()  # the client hangs up
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert len(ends) == 1


def test_an_exchange_cancelled_at_the_gateways_stop_ends_once() -> None:
    ends: list[str] = []

    async def scenario() -> None:
        link = _Link(b"")  # the daemon never answers (a long poll)
        client, _ = _stream()
        head = parse_request_head(b"POST /v1.41/containers/x/wait HTTP/1.1\r\nHost: docker\r\n\r\n")
        task = asyncio.ensure_future(exchange.hooked(client, exchange.Peer(), link, head, Route((SPEC,), ()),  # type: ignore[arg-type]
                                                     {"cap": InProcessAdapter(SPEC, _slot_taker(ends))}, LIMITS))
        await asyncio.sleep(0.1)
        assert ends == []
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(ends) == 1


def test_an_sdk_adapter_served_over_protocol_2_sends_its_warnings_in_the_reply() -> None:
    from powerstrip.hooks import protocol_v2, service

    adapter = Adapter("served")

    @adapter.pre("* /*")
    def careful(request: Request) -> None:
        request.warn("image not pinned")
        assert not request.on_end(lambda: None)  # nothing tells a served adapter the end
        if request.target.endswith("refuse"):
            raise Reject(403, "no")

    for target, allowed in (("/v1.41/containers/json", True), ("/v1.41/refuse", False)):
        call = protocol_v2.call_document(ClientRequest("GET", target, None, uid="u-7"))
        reply = asyncio.run(service._answer_v2(adapter, call))
        assert reply["allowed"] is allowed and reply["warnings"] == ["image not pinned"]
        assert protocol_v2.parse_verdict(reply, "u-7").warnings == ("image not pinned",)


def test_the_audit_entry_lists_the_warnings() -> None:
    from powerstrip.hooks.chain import HookRecord
    from powerstrip.observability.audit import audit_entry
    from powerstrip.proxy.connection import ClientConnection, ExchangeRecord

    outcome = Outcome(status=200, uid="u-1", hooks=[HookRecord("policy", "pre", "ok", 0.001, ("adapter policy: x",))])
    entry = audit_entry(ClientConnection(_Transport(), exchange.Peer(uid=0)), ExchangeRecord("GET", "/x", True, 1, outcome, 0.01))
    assert entry["warnings"] == ["adapter policy: x"]
    assert "fault" not in entry and "error" not in entry


@pytest.mark.parametrize("side", list(Side))
def test_the_audit_entry_names_the_side_at_fault_of_an_error(side: Side) -> None:
    from powerstrip.observability.audit import audit_entry
    from powerstrip.proxy.connection import ClientConnection, ExchangeRecord

    outcome = Outcome(status=502, note="it went wrong", fault=side)
    entry = audit_entry(ClientConnection(_Transport(), exchange.Peer(uid=0)), ExchangeRecord("GET", "/x", True, 1, outcome, 0.01))
    assert (entry["error"], entry["fault"]) == ("it went wrong", side.value)


def test_a_warning_stays_with_its_own_exchange() -> None:
    """The daemon's head is parsed once and remembered (the parser's memo): adding one client's Warning headers
    must not change the remembered head that the next client, answered the same second, is sent."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
    head = answer[:answer.index(b"\r\n\r\n") + 4]
    remembered = parse_response_head(head, "GET")
    written, _ = asyncio.run(_exchange(lambda: _Link(answer), _slot_taker([])))
    assert b"Warning:" in bytes(written.data)
    assert parse_response_head(head, "GET") is remembered and remembered.raw == head


def test_a_request_let_through_with_nothing_to_wait_for_comes_back_judged_for_the_relay() -> None:
    """No post-hook, warning or end callback: the pre-hooks' request goes back to the relay machine, which forwards
    it and relays the answer; nothing is written on the hook path."""
    quiet = Adapter("quiet")

    @quiet.pre("* /*")
    def rename(request: Request) -> None:
        request.target = request.target + "?all=1"

    async def scenario() -> tuple[object, bytes]:
        client, written = _stream()
        head = parse_request_head(b"GET /v1.41/containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        result = await exchange.hooked(client, exchange.Peer(), _Link(b""), head, Route((SPEC,), ()),  # type: ignore[arg-type]
                                       {"cap": InProcessAdapter(SPEC, quiet)}, LIMITS)
        return result, bytes(written.data)

    result, written = asyncio.run(scenario())
    assert isinstance(result, Judged) and written == b""
    assert result.head.raw == b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
    assert result.keep_alive is False  # the client's HTTP/1.0 head decides, not the judged HTTP/1.1 one
    assert result.body == b"" and len(result.outcome.hooks) == 1 and result.outcome.uid


def test_a_request_no_hook_changed_and_without_a_body_is_forwarded_with_its_own_head() -> None:
    quiet = Adapter("quiet")
    quiet.pre("* /*")(lambda request: None)

    async def scenario(raw: bytes, body: bytes = b"") -> tuple[object, object]:
        client, _ = _stream()
        client.reader.feed_data(body)
        head = parse_request_head(raw)
        return head, await exchange.hooked(client, exchange.Peer(), _Link(b""), head, Route((SPEC,), ()),  # type: ignore[arg-type]
                                           {"cap": InProcessAdapter(SPEC, quiet)}, LIMITS)

    head, result = asyncio.run(scenario(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"))
    assert isinstance(result, Judged) and result.head is head and result.body == b""
    # a body, even unchanged, is forwarded as the hooks saw it (canonical, Content-Length framed)
    head, result = asyncio.run(scenario(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n", b"8\r\n{\"a\": 1}\r\n0\r\n\r\n"))
    assert isinstance(result, Judged) and result.head is not head
    assert result.head.raw.endswith(b"Content-Length: 7\r\n\r\n") and result.body == b'{"a":1}'
