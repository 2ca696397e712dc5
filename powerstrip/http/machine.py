"""The relay of one client connection as a state machine with no I/O: events in, commands out.

In the style of h11: the driver (``powerstrip.proxy.driver``) turns what the sockets do into events
(``client_data``, ``client_eof``, ``daemon_data``, ``daemon_connected``, ``timer``, ...) and the machine
answers with commands on its ``Commands`` (send to the client or the daemon, open, close or half-close
either side, pause the client, hand an exchange to the hook chains, finish an exchange with one
``Outcome``). The commands are method calls on an object the driver provides rather than command
values: on the hot path every allocation counts, and a test records the calls just the same
(``tests/unit/test_machine.py`` drives the machine with events and asserts the commands).

One connection carries exchanges one after another (keep-alive). Each goes through explicit phases:

    IDLE → REQUEST_HEAD → (HOOKED: the driver runs the hook path and hands the connection back,
                           or hands back the judged request to forward: ``hooked_forward``)
                        → WAIT_RESPONSE → RESPONSE_BODY → IDLE (kept alive) | CLOSED
                                        → SPLICED (101, read-until-close) → CLOSED

The request body flows to the daemon alongside (``_Body``): a daemon may answer before it
has read all of it. The machine always knows whether the client was sent any of a response: an
error found before that is answered (4xx when the client is at fault, 502 when the daemon is); after
it, the only honest signal left is to close the connection.

Timers are one deadline per connection (``deadline``, a monotonic time, 0 for none) that the driver
checks from one periodic callback for all connections and reports with ``timer``: no timer object
per request.
"""

from __future__ import annotations

import enum
import functools
import http
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from powerstrip.http.framing import ChunkedScanner
from powerstrip.http.head import (
    MAX_HEAD_SIZE,
    Framing,
    MalformedMessage,
    MessageHead,
    RequestHead,
    ResponseHead,
    find_head_end,
    known_request,
    parse_request_head,
    parse_response_head,
    serialize_head,
)
from powerstrip.http.outcome import Outcome, Side

_REPLAYABLE = frozenset(("GET", "HEAD", "OPTIONS"))  # safe to send again (RFC 9110 9.2.1), as Go's client does
MAX_PIPELINED = 256 * 1024  # client bytes held while an exchange runs before the client is paused


class Phase(enum.Enum):
    IDLE = "idle"                      # between exchanges: no byte of the next request yet
    REQUEST_HEAD = "request head"      # part of a request head has arrived
    HOOKED = "hooked"                  # the driver runs the exchange through the hook chains
    WAIT_RESPONSE = "response head"    # request forwarded (its body may still flow), no final response yet
    RESPONSE_BODY = "response body"    # relaying a framed response body
    SPLICED = "spliced"                # raw bytes both ways (101 Switching Protocols, read-until-close)
    CLOSED = "closed"


class Timer(enum.Enum):
    """What the current deadline bounds."""

    IDLE = "idle"        # a kept-alive connection with no request
    HEAD = "head"        # an unfinished request head
    BODY = "body"        # a request body that stopped arriving
    LINGER = "linger"    # a spliced stream whose daemon side ended: client input still in flight


@dataclass(frozen=True, slots=True)
class Timeouts:
    idle: float      # an idle kept-alive connection is closed after this
    head: float      # a request head must be complete this long after its first byte (else 408)
    body: float      # a request body may pause this long (else 408, or a close once a response started)
    linger: float    # after the daemon ended a spliced stream, client input still gets this long


# The members as module globals for the hot path: ``Phase.IDLE`` is looked up through EnumType's
# ``__getattr__`` hook (about 60 ns, three times a global's), and an exchange makes dozens of them.
_IDLE, _REQUEST_HEAD, _HOOKED, _WAIT_RESPONSE = Phase.IDLE, Phase.REQUEST_HEAD, Phase.HOOKED, Phase.WAIT_RESPONSE
_RESPONSE_BODY, _SPLICED, _CLOSED = Phase.RESPONSE_BODY, Phase.SPLICED, Phase.CLOSED
_T_IDLE, _T_HEAD, _T_BODY, _T_LINGER = Timer.IDLE, Timer.HEAD, Timer.BODY, Timer.LINGER
_F_NONE, _F_LENGTH, _F_CHUNKED, _F_UNTIL_CLOSE = Framing.NONE, Framing.LENGTH, Framing.CHUNKED, Framing.UNTIL_CLOSE


class Commands(Protocol):
    """What the machine asks of its driver."""

    def send_client(self, data: bytes) -> None: ...
    def send_daemon(self, data: bytes) -> None: ...
    def open_daemon(self) -> bool:
        """True if a live daemon connection is there (send at once); else connect, then ``daemon_connected``
        or ``daemon_failed`` follows."""
        ...
    def close_daemon(self) -> None:
        """Drop the daemon connection: it cannot carry another request."""
        ...
    def half_close_daemon(self) -> None: ...
    def half_close_client(self) -> None: ...
    def close_client(self) -> None:
        """Close the client connection once what was sent to it is flushed."""
        ...
    def pause_client(self, paused: bool) -> None: ...
    def dispatch(self, head: RequestHead) -> bool | Refusal:
        """True if the exchange is hooked: the driver runs it and calls ``hooked_done`` after; a
        ``Refusal`` if the driver refused it from its head alone; False to relay it."""
        ...
    def finished(self, head: RequestHead, outcome: Outcome) -> None:
        """One exchange ended."""
        ...
    def refused(self, raw: bytes, outcome: Outcome) -> None:
        """A request head that could not be read (``raw``: what arrived of it) was answered with an error."""
        ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request without a body that the driver refused from its head alone (a path rule): the machine
    answers it at once, nothing is forwarded, and the connection stays usable."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class Judged:
    """A hooked request the pre-hooks let through, handed back for the machine to forward and relay: no post-hook,
    warning or end callback waits for its answer, so it needs no stream and no task past the hooks."""

    head: RequestHead     # as the hooks left it, framed for its whole body (Content-Length)
    body: bytes
    keep_alive: bool      # what the client's own request head allows
    outcome: Outcome      # the hooks' records and the exchange's uid, completed by the relay


@functools.lru_cache(maxsize=256)  # the same refusal (a path rule's) goes out again and again
def error_response(status: int, message: str, keep_alive: bool) -> bytes:
    """A Docker-style error (``{"message": ...}``), which docker clients print as is."""
    body = json.dumps({"message": message}).encode()
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode())]
    if not keep_alive:
        headers.append((b"Connection", b"close"))
    return serialize_head(status_line(status), headers) + body


@functools.lru_cache(maxsize=64)
def status_line(status: int, reason: bytes | None = None) -> bytes:
    if reason is None:
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Unknown"
    return b"HTTP/1.1 %d %s" % (status, reason)


def may_hijack(head: RequestHead) -> bool:
    """Requests whose connection may turn into a raw stream: the client may send stdin early."""
    return head.header(b"upgrade") is not None or "/attach" in head.target or "/exec/" in head.target


class _Body:
    """What is still to come of a relayed body (request or response), as framed on the wire."""

    __slots__ = ("remaining", "scanner")

    def __init__(self, head: MessageHead) -> None:
        self.remaining = head.length if head.framing is _F_LENGTH else 0
        self.scanner = ChunkedScanner() if head.framing is _F_CHUNKED else None

    def take(self, data: bytes) -> int:
        """How many bytes of ``data`` belong to the body; raises MalformedMessage for a bad chunked body."""
        if self.scanner is None:
            taken = min(self.remaining, len(data))
            self.remaining -= taken
            return taken
        consumed, _ = self.scanner.feed(data, collect=False)
        return consumed

    @property
    def done(self) -> bool:
        return self.remaining == 0 if self.scanner is None else self.scanner.done


class KeepAlive:
    """Whether each side's connection can carry the next exchange: its own small machine.

    The client's connection survives an exchange if both heads allow it and the whole request body
    was read (else its rest would be taken for the next request); the daemon's if its response
    allowed it, ended exactly at its framing and the whole request body was sent.
    """

    __slots__ = ("client", "daemon")

    def __init__(self) -> None:
        self.client = True
        self.daemon = True

    def request(self, head: RequestHead) -> None:
        self.client = head.keep_alive
        self.daemon = True

    def response(self, head: ResponseHead) -> None:
        if not head.keep_alive:
            self.client = self.daemon = False

    def spent(self) -> None:
        """The exchange ended early (a body cut short, bytes past a body): neither side can go on."""
        self.client = self.daemon = False


class ConnectionMachine:
    """Every exchange of one client connection that no hook matches, relayed byte for byte."""

    __slots__ = (
        "_do", "_clock", "_timeouts", "phase", "deadline", "timer", "closing",
        "_buffer", "_daemon_buffer", "_head", "_request_body", "_response", "_response_body",
        "_keep", "_pending", "_daemon_ready", "_client_eof", "_daemon_eof", "_response_started", "_replay",
        "_outcome", "_paused", "_daemon_paused", "_last_response",
    )

    def __init__(self, commands: Commands, timeouts: Timeouts, clock: Callable[[], float]) -> None:
        self._do = commands
        self._clock = clock
        self._timeouts = timeouts
        self.phase = _IDLE
        self.deadline = clock() + timeouts.idle
        self.timer = _T_IDLE
        self.closing = False  # the gateway stops: no exchange after the one in progress
        self._buffer = bytearray()         # client bytes not yet part of a forwarded message
        self._daemon_buffer = bytearray()  # a response head still arriving
        self._head: RequestHead | None = None
        self._request_body: _Body | None = None
        self._response: ResponseHead | None = None
        self._response_body: _Body | None = None
        self._keep = KeepAlive()
        self._pending: list[bytes] = []   # for the daemon, until its connection is open
        self._replay: bytes | None = None  # a request to send again if its reused connection closes unanswered
        self._daemon_ready = False
        self._client_eof = False
        self._daemon_eof = False
        self._response_started = False
        self._outcome = Outcome()
        self._paused = False
        self._daemon_paused = False
        # the daemon's last final response head (not to a HEAD) as it came: the next one is often the same
        self._last_response: ResponseHead | None = None

    # ---- events from the client --------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        phase = self.phase
        if phase is _SPLICED:
            self._to_daemon(data)
            return
        if phase is _CLOSED:
            return
        buffer = self._buffer
        if self._request_body is not None and not buffer:
            data = self._body_bytes(data)
            if self.phase is _CLOSED or not data:
                return
        if phase is _IDLE or phase is _REQUEST_HEAD:
            if buffer:
                buffer += data
                data = bytes(buffer)
                buffer.clear()
            self._next_request(data)
            return
        buffer += data
        if len(buffer) > MAX_PIPELINED and not self._paused:
            self._paused = True
            self._do.pause_client(True)

    def client_eof(self) -> None:
        """The client closed its sending side (it may still read)."""
        self._client_eof = True
        phase = self.phase
        if phase is _SPLICED:
            self._do.half_close_daemon()
            if self._daemon_eof:
                self._end_splice()
        elif phase is _IDLE:
            if not self._buffer:
                self._close()
        elif phase is _REQUEST_HEAD:
            self._close()  # a head cut short: nothing to answer (as Go's server)
        elif phase is _WAIT_RESPONSE or phase is _RESPONSE_BODY:
            if self._request_body is not None:
                self._fail(Side.CLIENT, 400, "the client closed its connection inside the request body")
            elif not self._buffer:
                # the last request the client will send: pass its EOF on, as a direct client's would be
                # seen by dockerd (which then ends long polls and still answers the others)
                self._do.half_close_daemon()
                self._keep.spent()

    def client_lost(self) -> None:
        """The client connection is gone (closed or reset): nothing can be sent to it any more."""
        if self.phase is _CLOSED:
            return
        if self.phase is not _IDLE and self.phase is not _HOOKED and self._head is not None:
            self._outcome.note = self._outcome.note or "the client went away"
            self._outcome.keep_alive = False
            self._do.finished(self._head, self._outcome)
        self.phase = _CLOSED
        self.deadline = 0.0
        self._do.close_daemon()
        self._daemon_ready = False

    # ---- events from the daemon --------------------------------------------------------------

    def daemon_connected(self) -> None:
        self._daemon_eof = False  # a new connection: an earlier one's EOF says nothing about it
        self._send_pending()

    def _send_pending(self) -> None:
        """The daemon connection is there: what waited for it goes out in one write, then the client's EOF."""
        self._daemon_ready = True
        if self._pending:
            pending, self._pending = self._pending, []
            self._do.send_daemon(b"".join(pending))
            if self._client_eof and self._request_body is None and not self._buffer:
                self._do.half_close_daemon()

    def daemon_failed(self, reason: str) -> None:
        self._pending.clear()
        self._keep.spent()
        self._fail(Side.DAEMON, 502, reason)

    def daemon_data(self, data: bytes) -> None:
        phase = self.phase
        if phase is _SPLICED:
            self._do.send_client(data)
        elif phase is _RESPONSE_BODY:
            self._response_bytes(data)
        elif phase is _WAIT_RESPONSE:
            self._replay = None  # the daemon answers: never sent twice
            buffer = self._daemon_buffer
            if buffer:
                buffer += data
                data = bytes(buffer)
                buffer.clear()
            self._response_head(data)
        elif phase is not _CLOSED:
            # bytes nobody asked for (between exchanges): the connection is out of step, drop it
            self._daemon_ready = False
            self._do.close_daemon()

    def daemon_eof(self) -> None:
        self._daemon_eof = True
        self._daemon_ready = False
        phase = self.phase
        if phase is _SPLICED:
            self._do.half_close_client()
            if self._client_eof:
                self._end_splice()
            else:
                self._set_timer(_T_LINGER, self._timeouts.linger)
        elif phase is _WAIT_RESPONSE:
            replay, self._replay = self._replay, None
            if replay is not None and not self._daemon_buffer and not self._client_eof:
                # a kept-alive connection the daemon closed as the request went out (it restarted, or
                # closed it idle): a request that is safe to repeat goes again on a new one, as Go's
                # client and HAProxy do; any other is the daemon's failure
                self._do.close_daemon()
                self._pending.append(replay)
                if self._do.open_daemon():
                    self.daemon_connected()
                return
            self._fail(Side.DAEMON, 502, "the daemon closed the connection without answering")
        elif phase is _RESPONSE_BODY:
            self._fail(Side.DAEMON, 502, "the daemon closed the connection inside the response body")
        elif phase is not _CLOSED:
            self._do.close_daemon()  # an idle kept-alive connection the daemon closed: reopened when needed

    def daemon_flow(self, paused: bool) -> None:
        """The daemon connection stopped (or resumed) taking bytes: a request body that waits for it is
        not stalled by the client, so its timer stops meanwhile."""
        self._daemon_paused = paused
        if self._request_body is not None and self.timer is _T_BODY:
            self.deadline = 0.0 if paused else self._clock() + self._timeouts.body

    # ---- events from the driver ----------------------------------------------------------------

    def timer_fired(self) -> None:
        """The deadline passed."""
        timer = self.timer
        self.deadline = 0.0
        if timer is _T_IDLE and self.phase is _IDLE:
            self._close()
        elif timer is _T_HEAD and self.phase is _REQUEST_HEAD:
            self._answer_and_close(408, f"request head not complete within {self._timeouts.head:g}s",
                                   bytes(self._buffer[:4096]))
        elif timer is _T_BODY and self._request_body is not None:
            self._fail(Side.CLIENT, 408, f"request body stopped arriving for {self._timeouts.body:g}s")
        elif timer is _T_LINGER and self.phase is _SPLICED:
            self._end_splice()

    def take_buffered(self) -> bytes:
        """Hand the client bytes that follow the head over to the hooked exchange."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    @property
    def client_eof_seen(self) -> bool:
        return self._client_eof

    def hooked_done(self, keep_alive: bool, leftover: bytes, daemon_open: bool) -> None:
        """The hooked exchange ended; ``leftover`` is what the client sent past its request."""
        self._head = None
        self._daemon_ready = daemon_open
        if not keep_alive or self.closing or self.phase is _CLOSED:
            self._close()
            return
        self._buffer += leftover
        self._idle()

    def hooked_forward(self, judged: Judged, leftover: bytes, daemon_open: bool) -> None:
        """The pre-hooks judged the exchange and nothing else waits for its answer: the request as they left it
        goes to the daemon, and the answer is relayed as an unhooked exchange's (``leftover``: what the client
        sent past its request)."""
        head = judged.head
        if self.phase is _CLOSED:  # the client left while the hooks ran: nothing goes to the daemon
            judged.outcome.note, judged.outcome.keep_alive = "the client went away", False
            self._do.finished(head, judged.outcome)
            return
        self._head = head
        self._outcome = judged.outcome
        self._keep.request(head)
        self._keep.client = judged.keep_alive  # the client's own head decides (a re-serialised one says HTTP/1.1)
        self._response_started = False
        self._daemon_ready = daemon_open
        if leftover:
            self._buffer += leftover
        self.phase = _WAIT_RESPONSE
        self._send_whole(head.raw + judged.body if judged.body else head.raw, head.method)

    def stop(self) -> None:
        """The gateway stops: an idle connection closes now, a busy one after its exchange."""
        self.closing = True
        if self.phase is _IDLE:
            self._close()

    @property
    def streaming(self) -> bool:
        """Relaying a stream now: spliced, or a chunked response (events, logs -f)."""
        return self.phase is _SPLICED or (
            self.phase is _RESPONSE_BODY and self._response is not None
            and self._response.framing is _F_CHUNKED)

    @property
    def busy(self) -> bool:
        return self.phase is not _IDLE and self.phase is not _CLOSED

    # ---- requests ------------------------------------------------------------------------------

    def _next_request(self, data: bytes) -> None:
        """Read the request head at the start of ``data`` (all the client bytes not yet used)."""
        head = known_request(data)
        if head is not None:
            self._start(head, b"")
            return
        end = find_head_end(data)
        if end < 0:
            self._buffer += data
            if len(data) > MAX_HEAD_SIZE:
                self._answer_and_close(431, "request head larger than 64 KiB", data[:4096])
            elif self._client_eof:
                self._close()
            elif self.phase is _IDLE and data.strip():
                self.phase = _REQUEST_HEAD
                self._set_timer(_T_HEAD, self._timeouts.head)
            return
        if end == len(data):
            raw, rest = data, b""
        else:
            raw, rest = data[:end], data[end:]
        if raw[:1] in b"\r\n" and not raw.strip():  # blank lines before a request are ignored (RFC 9112 2.2)
            if rest:
                self._next_request(rest)
            return
        try:
            head = parse_request_head(raw)
        except MalformedMessage as exc:
            self._answer_and_close(exc.status, f"powerstrip: {exc}", raw)
            return
        self._start(head, rest)

    def _start(self, head: RequestHead, rest: bytes) -> None:
        """An exchange begins with ``head``; ``rest`` is what the client sent after it."""
        self._head = head
        self._outcome = Outcome()
        self._keep.request(head)
        self._response_started = False
        self.deadline = 0.0
        if rest:
            self._buffer += rest
        decision = self._do.dispatch(head)
        if decision is not False:
            if decision is True:
                self.phase = _HOOKED
            else:
                self._refuse(decision)
            return
        self.phase = _WAIT_RESPONSE
        buffer = self._buffer
        if head.framing is _F_NONE:
            self._send_whole(head.raw, head.method)
            return
        # a request with a body: the head waits with the body bytes that came with it, so that both go out
        # in one write (one system call, and the daemon reads the request at once); a body refused here
        # (a malformed chunk) leaves nothing forwarded at all
        self._request_body = _Body(head)
        self._replay = None
        ready = self._daemon_ready or self._do.open_daemon()
        self._daemon_ready = False
        self._pending.append(head.raw)
        self._set_timer(_T_BODY, self._timeouts.body)
        if buffer:
            data = bytes(buffer)
            buffer.clear()
            rest = self._body_bytes(data)
            if rest:
                buffer += rest
        if ready and self.phase is _WAIT_RESPONSE:
            self._send_pending()

    def _send_whole(self, request: bytes, method: str) -> None:
        """Forward a request that is all here (a head without a body, or a judged head with its whole body)."""
        self._request_body = None
        if self._daemon_ready or self._do.open_daemon():
            self._daemon_ready = True
            # on a connection that already existed: repeatable if it turns out closed (safe method)
            self._replay = request if method in _REPLAYABLE else None
            self._do.send_daemon(request)
        else:
            self._replay = None
            self._pending.append(request)
        if self._client_eof and not self._buffer and self._daemon_ready:
            self._do.half_close_daemon()
            self._keep.spent()

    def _body_bytes(self, data: bytes) -> bytes:
        """Forward the part of ``data`` that belongs to the request body; return the rest."""
        body = self._request_body
        assert body is not None
        try:
            taken = body.take(data)
        except MalformedMessage as exc:
            self._fail(Side.CLIENT, exc.status, f"powerstrip: {exc}")
            return b""
        if taken:
            self._to_daemon(data if taken == len(data) else data[:taken])
        if body.done:
            self._request_body = None
            if self.timer is _T_BODY:
                self.deadline = 0.0
            if self._client_eof and taken == len(data):
                self._keep.spent()
                if self._daemon_ready:  # else the EOF follows what waits for the connection (_send_pending)
                    self._do.half_close_daemon()
        elif not self._daemon_paused:
            self.deadline = self._clock() + self._timeouts.body
        return data[taken:] if taken < len(data) else b""

    def _to_daemon(self, data: bytes) -> None:
        if self._daemon_ready:
            self._do.send_daemon(data)
        else:
            self._pending.append(data)

    # ---- responses -----------------------------------------------------------------------------

    def _response_head(self, data: bytes) -> None:
        """Read the response head at the start of ``data`` (all the daemon bytes not yet used)."""
        head = self._head
        assert head is not None
        last = self._last_response
        if last is not None and data.startswith(last.raw) and head.method != "HEAD":
            response, end = last, len(last.raw)  # the daemon repeats its head (within the second of its Date)
        else:
            while True:
                end = find_head_end(data)
                if end < 0:
                    self._daemon_buffer += data
                    if len(data) > MAX_HEAD_SIZE:
                        self._keep.spent()
                        self._fail(Side.DAEMON, 502, "the daemon's response head is larger than 64 KiB")
                    return
                try:
                    response = parse_response_head(data[:end] if end < len(data) else data, head.method)
                except MalformedMessage as exc:
                    self._keep.spent()
                    self._fail(Side.DAEMON, 502, f"the daemon sent a malformed response ({exc})")
                    return
                if response.status < 200 and response.status != 101:
                    self._do.send_client(data[:end])  # interim (100 Continue): passed on, the final one follows
                    data = data[end:]
                    continue
                break
            if len(response.raw) != end:  # bare LFs made CRLF: the head goes out rewritten, not as it came
                self._response_with_head(response, data[end:])
                return
            if head.method != "HEAD":
                self._last_response = response
        if response.framing is _F_LENGTH and len(data) - end == response.length:
            self._answered(response)
            self._do.send_client(data)  # most API answers: head and whole body in one read, sent as they came
            self._response_done()
            return
        self._response_with_head(response, data[end:])

    def _answered(self, response: ResponseHead) -> None:
        """The daemon's final response head is in: from here on the client has (been sent) an answer."""
        self._response = response
        self._outcome.status = response.status
        self._keep.response(response)
        self._response_started = True

    def _response_with_head(self, response: ResponseHead, rest: bytes) -> None:
        """Relay ``response`` (its head as ``response.raw``) and ``rest``, the bytes the daemon sent after it."""
        self._answered(response)
        raw = response.raw
        if response.status == 101 or response.framing is _F_UNTIL_CLOSE:
            self._splice(raw + rest)
            return
        if response.framing is _F_NONE:
            self._do.send_client(raw)
            if rest:
                self._keep.spent()
            self._response_done()
            return
        self._response_body = _Body(response)
        self.phase = _RESPONSE_BODY
        if not rest:
            self._do.send_client(raw)
            return
        self._response_bytes(rest, raw)

    def _response_bytes(self, data: bytes, head: bytes = b"") -> None:
        body = self._response_body
        assert body is not None
        try:
            taken = body.take(data)
        except MalformedMessage as exc:
            good = data[: body.scanner.valid] if body.scanner is not None else b""
            if head or good:
                self._do.send_client(head + good)  # what was well framed, up to the bad line
            self._keep.spent()
            self._fail(Side.DAEMON, 502, f"the daemon sent a malformed response body ({exc})")
            return
        if taken < len(data):
            self._keep.spent()  # bytes past the body: the daemon connection is out of step
            data = data[:taken]
        self._do.send_client(head + data if head else data)
        if body.done:
            self._response_body = None
            self._response_done()

    def _response_done(self) -> None:
        keep = self._keep
        if self._request_body is not None:
            keep.spent()  # the daemon answered before the whole request body: the connection is spent
        self._outcome.keep_alive = keep.client and not self.closing
        if not keep.daemon:
            self._daemon_ready = False
            self._do.close_daemon()
        self._request_body = None
        self._do.finished(self._head, self._outcome)
        if not self._outcome.keep_alive:
            self._close()
            return
        self._idle()

    def _refuse(self, refusal: Refusal) -> None:
        outcome = self._outcome
        outcome.status, outcome.note, outcome.fault = refusal.status, refusal.message, Side.CLIENT
        outcome.keep_alive = self._keep.client and not self.closing and self._head is not None \
            and self._head.framing is _F_NONE
        self._response_started = True
        self._do.send_client(error_response(refusal.status, refusal.message, outcome.keep_alive))
        self._do.finished(self._head, outcome)
        if not outcome.keep_alive:
            self._close()
            return
        self._idle()

    def _idle(self) -> None:
        self.phase = _IDLE
        self._head = self._response = None
        self._set_timer(_T_IDLE, self._timeouts.idle)
        if self._paused:
            self._paused = False
            self._do.pause_client(False)
        if self._buffer:
            self._next_request(self.take_buffered())
        elif self._client_eof:
            self._close()

    # ---- splice, errors, close -----------------------------------------------------------------

    def _splice(self, first: bytes) -> None:
        """From here on bytes flow both ways untouched; each side's half-close is passed on."""
        self.phase = _SPLICED
        self._request_body = None
        self.deadline = 0.0
        self._do.send_client(first)
        if self._buffer:  # stdin the client sent early, after its request
            data = self.take_buffered()
            self._to_daemon(data)
        if self._paused:
            self._paused = False
            self._do.pause_client(False)
        if self._client_eof:
            self._do.half_close_daemon()

    def _end_splice(self) -> None:
        self._outcome.keep_alive = False
        self._do.finished(self._head, self._outcome)
        self._head = None
        self._close()

    def _fail(self, side: Side, status: int, message: str) -> None:
        """End the exchange in progress with an error: answered if no response started, else cut."""
        outcome = self._outcome
        outcome.fault, outcome.note, outcome.keep_alive = side, message, False
        self._request_body = None
        self._daemon_ready = False
        self._pending.clear()
        self._do.close_daemon()
        if not self._response_started:
            outcome.status = status
            self._do.send_client(error_response(status, message, False))
        self._do.finished(self._head, outcome)
        self._head = None
        self._close()

    def _answer_and_close(self, status: int, message: str, raw: bytes) -> None:
        """A request that cannot be read is answered and its connection closed (its framing is unknown)."""
        outcome = Outcome(status=status, note=message, fault=Side.CLIENT)
        self._do.send_client(error_response(status, message, False))
        self._do.refused(raw, outcome)
        self._close()

    def _set_timer(self, timer: Timer, seconds: float) -> None:
        self.timer = timer
        self.deadline = self._clock() + seconds

    def _close(self) -> None:
        if self.phase is _CLOSED:
            return
        self.phase = _CLOSED
        self.deadline = 0.0
        self._buffer.clear()
        self._do.close_client()
