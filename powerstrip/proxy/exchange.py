"""A hooked exchange: de-frame the body, run the pre-hook chain, forward, run the post-hook chain.

Unhooked exchanges never come here: the relay machine (``powerstrip.http.machine``) forwards them
byte for byte. The driver hands a hooked exchange its client and daemon connections as streams
(``proxy.bridge``) and takes them back when ``hooked`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from powerstrip.canonical import BodyRefused, judged
from powerstrip.config.routes import Route
from powerstrip.hooks.chain import ChainRun, ChainStopped, check_streamed
from powerstrip.hooks.model import Adapter, ClientRequest, DecodedBody, PathVerdict, Peer, ServerResponse
from powerstrip.hooks.scope import ExchangeScope
from powerstrip.http.head import (
    Framing,
    MalformedMessage,
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
    replace_headers,
    serialize_head,
)
from powerstrip.http.machine import Judged, error_response, may_hijack, status_line
from powerstrip.http.outcome import Outcome, Side
from powerstrip.http.params import AmbiguousRequest, check_parameters
from powerstrip.http.warning import warning_lines, with_warnings
from powerstrip.proxy.streams import (
    BodyTooLarge,
    ChunkedReader,
    PeerClosed,
    PeerWatch,
    copy_body,
    discard_input,
    read_body,
    read_head,
    splice,
    unless_peer_leaves,
)
from powerstrip.proxy.bridge import Stream
from powerstrip.proxy.upstream import DaemonUnavailable

log = logging.getLogger("powerstrip.proxy")


class DaemonLink(Protocol):
    """The client connection's daemon connection, as the hook path uses it."""

    async def connect(self) -> Stream:
        """The kept-alive connection or a new one (raises DaemonUnavailable)."""
        ...

    def discard(self) -> None:
        """Drop it (after an error, a hijack or a response that ends with close)."""
        ...


LINGER_BYTES = 64 * 1024 * 1024
SMALL_BODY = 64 * 1024  # a Content-Length body up to this size is sent together with its head
LINGER_SECONDS = 2.0
DRY_RUN_HEADER = b"x-powerstrip-dry-run"
_MAY_BE_DRY_RUN = re.compile(rb"\nx-powerstrip-dry-run[\t ]*:", re.IGNORECASE)
NO_HOOKS = Route((), ())


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds every exchange keeps (all from the command line)."""

    max_body_size: int
    body_timeout: float
    stream_grace: float
    hijack_linger: float


class OpenStreams:
    """How many responses are relayed as streams right now (hijacked, read-until-close, chunked): a gauge."""

    count = 0


@contextlib.contextmanager
def _streaming() -> Iterator[None]:
    OpenStreams.count += 1
    try:
        yield
    finally:
        OpenStreams.count -= 1


def _warnings(scope: ExchangeScope | None) -> bytes:
    """The ``Warning`` header lines of what the exchange's adapters warned about (none: no bytes)."""
    return warning_lines(scope.warnings, scope.dropped) if scope is not None and scope.warnings else b""


async def send_error(client: Stream, status: int, message: str, keep_alive: bool, outcome: Outcome,
                     scope: ExchangeScope | None = None, *, fault: Side) -> Outcome:
    """A ``{"message": ...}`` error, with the ``Warning`` headers of ``scope`` (the hooks' warnings stand
    whatever the outcome, as Kubernetes sends a denied request's warnings); ``fault`` goes to the audit."""
    client.writer.write(with_warnings(error_response(status, message, keep_alive), _warnings(scope)))
    await client.writer.drain()
    outcome.status, outcome.keep_alive, outcome.note, outcome.fault = status, keep_alive, message, fault
    return outcome


async def _final_response(upstream: Stream, client: Stream, method: str) -> ResponseHead:
    """The daemon's final response head; interim 1xx responses (100 Continue) go to the client."""
    while True:
        raw = await read_head(upstream.reader)
        if raw is None:
            raise PeerClosed("the daemon closed the connection without answering")
        response = parse_response_head(raw, method)
        if response.status >= 200 or response.status == 101:
            return response
        client.writer.write(raw)


async def _deliver(
    client: Stream, upstream: Stream, link: DaemonLink, request_keep_alive: bool,
    response: ResponseHead, pump: asyncio.Future[None] | None, limits: Limits, outcome: Outcome,
    watch: PeerWatch | None,
) -> Outcome:
    """Relay the response as framed; a 101 or a read-until-close response becomes a spliced stream.

    ``watch`` is the caller's PeerWatch on the client (a client that leaves ends the body), stopped
    here before a splice takes the client's reader over.
    """
    outcome.status = response.status
    if response.framing is Framing.LENGTH and response.length <= SMALL_BODY:
        # most API answers: the body is already here, so head and body go out in one write
        try:
            body = await upstream.reader.readexactly(response.length)
        except asyncio.IncompleteReadError:
            raise PeerClosed("connection closed inside a body") from None
        client.writer.write(response.raw + body)
        return await _finish(client, link, request_keep_alive, response, response.keep_alive, pump, outcome)
    client.writer.write(response.raw)
    if response.status == 101 or response.framing is Framing.UNTIL_CLOSE:
        if watch is not None:
            await watch.stop()
        if pump is not None:
            await asyncio.wait_for(pump, limits.body_timeout)
        with _streaming():
            await splice(client, upstream, limits.hijack_linger)
        link.discard()
        return outcome
    reusable = response.keep_alive
    if response.framing is Framing.CHUNKED:
        with _streaming():
            reusable = await ChunkedReader(upstream.reader).relay_response(client.writer) and reusable
    else:
        await copy_body(upstream.reader, client.writer, response.framing, response.length)
    return await _finish(client, link, request_keep_alive, response, reusable, pump, outcome)


async def _finish(
    client: Stream, link: DaemonLink, request_keep_alive: bool, response: ResponseHead, reusable: bool,
    pump: asyncio.Future[None] | None, outcome: Outcome,
) -> Outcome:
    """After a relayed response: flush it, decide keep-alive on both sides."""
    await client.writer.drain()
    outcome.keep_alive = request_keep_alive and response.keep_alive
    if pump is not None and (not pump.done() or pump.exception() is not None):
        pump.cancel()  # the daemon answered before the whole request body: the connection is spent
        outcome.keep_alive = False
    if not reusable:
        link.discard()
    return outcome


def judged_by_path(route: Route, adapter: Adapter, head: RequestHead, peer: Peer) -> tuple[Route | None, PathVerdict | None]:
    """A route whose only hook can decide by path (``PathJudge``): relayed unhooked (None, None), refused
    (route, verdict), or hooked as usual (route, None)."""
    judge = getattr(adapter, "judge_path", None)
    verdict = judge(head.method, head.target, peer) if judge is not None else None
    if verdict is None or (verdict.status == 0 and is_dry_run(head)):
        return route, None
    if verdict.status == 0:
        return None, None
    if head.framing is not Framing.NONE:
        # a refusal must leave the connection usable (a "Connection: close" 403 to an Upgrade request reads
        # as a hijack to the docker CLI), so a request with a body goes the hooked way, which reads it first
        return route, None
    return route, PathVerdict(verdict.status, f"adapter {route.pre[0].name}: {verdict.message}")


def is_dry_run(head: RequestHead) -> bool:
    """Whether the client asked for a dry run (``X-Powerstrip-Dry-Run: 1``): hooks only, no daemon."""
    if _MAY_BE_DRY_RUN.search(head.raw) is None:  # every unhooked request asks: one C-level search
        return False
    value = head.header(DRY_RUN_HEADER)
    return value is not None and value.strip().lower() in (b"1", b"true", b"yes")


async def _dry_run_answer(client: Stream, head: RequestHead, forwarded: ClientRequest, outcome: Outcome) -> Outcome:
    """What the daemon would have been sent, and what each hook did; nothing is forwarded."""
    body = json.dumps({
        "DryRun": True,
        "Uid": forwarded.uid,
        "Request": {"Method": forwarded.method, "Request": forwarded.request, "Body": forwarded.body},
        "Hooks": [{"Adapter": record.adapter, "Phase": record.phase, "Outcome": record.outcome}
                  for record in outcome.hooks],
    }).encode()
    headers = [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode())]
    client.writer.write(with_warnings(serialize_head(status_line(200), headers), _warnings(forwarded.scope)) + body)
    await client.writer.drain()
    outcome.status, outcome.keep_alive = 200, head.keep_alive
    return outcome


def _decode(body: bytes) -> str | None:
    """Protocol v1 carries text; an empty body is null."""
    return body.decode("utf-8") if body else None


def _forwarded_head(head: RequestHead, request: ClientRequest, body: bytes) -> bytes:
    had_body = head.framing is not Framing.NONE or head.header(b"content-length") is not None
    add = [(b"Content-Length", str(len(body)).encode())] if body or had_body else []
    headers = replace_headers(head.headers, (b"content-length", b"transfer-encoding", b"expect"), add)
    return serialize_head(f"{request.method} {request.request} HTTP/1.1".encode("latin-1"), headers)


def _modified_response(response: ResponseHead, result: ServerResponse) -> bytes:
    body = result.body.encode("utf-8") if result.body is not None else b""
    add = [(b"Content-Length", str(len(body)).encode())]
    if result.content_type is not None:
        add.insert(0, (b"Content-Type", result.content_type.encode("latin-1")))
    headers = replace_headers(response.headers, (b"content-length", b"transfer-encoding", b"content-type"), add)
    reason = response.reason if result.code == response.status else None
    return serialize_head(status_line(result.code, reason), headers) + body


async def _collect_response_body(
    upstream: Stream, response: ResponseHead, limits: Limits
) -> tuple[bytes | None, list[bytes], ChunkedReader | None]:
    """The whole response body, or (None, raw bytes so far, reader) when it is a stream still open.

    A chunked response counts as a stream when it has not ended within ``stream_grace`` seconds:
    endless streams (events, logs -f) must flow on, not wait for post-hooks that cannot run.
    """
    if response.framing is not Framing.CHUNKED:
        return await read_body(upstream.reader, response.framing, response.length, limits.max_body_size), [], None
    chunks = ChunkedReader(upstream.reader)
    raw_parts: list[bytes] = []
    payload: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.stream_grace):
            while not chunks.done:
                raw, pieces = await chunks.next_piece()
                raw_parts.append(raw)
                payload.extend(pieces)
                size += sum(map(len, pieces))
                if size > limits.max_body_size:
                    raise BodyTooLarge(limits.max_body_size)
    except TimeoutError:
        return None, raw_parts, chunks
    return b"".join(payload), raw_parts, None


_UID_PREFIX = secrets.token_hex(8)
_UID_COUNTER = itertools.count(secrets.randbits(63))


def exchange_uid() -> str:
    """The id of one hooked exchange (audit, logs, protocol v2's ``uid``): 32 hex digits like a UUID's,
    unique within the process by a counter and across processes by a random prefix — without the
    system call and object a ``uuid4`` costs on every hooked request."""
    return f"{_UID_PREFIX}{next(_UID_COUNTER):016x}"


async def hooked(
    client: Stream, peer: Peer, link: DaemonLink, head: RequestHead, route: Route,
    adapters: dict[str, Adapter], limits: Limits,
) -> Outcome | Judged:
    """De-frame the body, run the pre-hooks, forward exactly what they produced, run the post-hooks.

    A request the pre-hooks let through with nothing left to do on its answer (no post-hook, no warning, no end
    callback) comes back ``Judged``: the relay machine forwards it and relays the answer as an unhooked one's.

    The exchange's ``ExchangeScope`` ends here, in a ``finally``, exactly once however the exchange ends (an
    answer, a refusal, a client or daemon gone, a stream closed hours later, the task cancelled at the
    gateway's stop): what the adapters tied to its end (a concurrency slot) is always given back.
    """
    scope = ExchangeScope(ends=True)
    try:
        if head_alone_judges(route, adapters, head):
            return await _streamed(client, peer, link, head, route, adapters, limits, scope)
        return await _hooked(client, peer, link, head, route, adapters, limits, scope)
    finally:
        scope.end()


def head_alone_judges(route: Route, adapters: dict[str, Adapter], head: RequestHead) -> bool:
    """Whether every hook of ``route`` judges this request by its head alone (``HeadJudge``), so its body (a build
    context, an archive, an image) is streamed to the daemon as framed, never buffered, never bounded by
    ``--max-body-size`` nor required to be text. Only for routes without post-hooks and bodies that exist."""
    if head.framing is Framing.NONE or route.post or not route.pre:
        return False
    for spec in route.pre:
        reads_body = getattr(adapters[spec.name], "reads_body", None)
        if reads_body is None or reads_body(head.method, head.target):
            return False
    return True


async def _streamed(
    client: Stream, peer: Peer, link: DaemonLink, head: RequestHead, route: Route,
    adapters: dict[str, Adapter], limits: Limits, scope: ExchangeScope,
) -> Outcome:
    """A hooked exchange whose hooks need no body: they judge the head, then the body flows to the daemon.

    Nothing of the body is read before the pre-hooks decided (a ``100 Continue`` waits for them), so a refused
    request has its body discarded and its connection closed; a hook cannot give such a request a body.
    """
    outcome = Outcome(uid=exchange_uid())
    chain = ChainRun(adapters, outcome.hooks)
    try:
        check_parameters(head.target, head.raw)
    except AmbiguousRequest as exc:
        return await _refuse_unread(client, 400, f"powerstrip: {exc}", outcome, None, Side.CLIENT)
    headers = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers)
    request = ClientRequest(head.method, head.target, None, headers, outcome.uid, is_dry_run(head), peer, scope)
    try:
        forwarded = await chain.pre(route.pre, request)
        check_streamed(forwarded)
    except ChainStopped as stop:
        return await _refuse_unread(client, stop.status, stop.message, outcome, scope, stop.fault)
    except Exception as exc:  # noqa: BLE001 - as in the buffered exchange: an answer, never a dropped connection
        log.exception("the pre-hook path failed (uid %s)", outcome.uid)
        return await _refuse_unread(client, 502, f"powerstrip: the pre-hooks failed ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); nothing was forwarded to the daemon", outcome, scope,
                                    Side.GATEWAY)
    if forwarded.dry_run:
        await _dry_run_answer(client, head, forwarded, outcome)
        outcome.keep_alive = False  # the body was never read: drained (bounded), then the connection closes
        await discard_input(client.reader, LINGER_BYTES, LINGER_SECONDS)
        return outcome
    try:
        upstream = await link.connect()
    except DaemonUnavailable as exc:
        return await _refuse_unread(client, 502, str(exc), outcome, scope, Side.DAEMON)
    request_line = f"{forwarded.method} {forwarded.request} HTTP/1.1".encode("latin-1")
    upstream.writer.write(serialize_head(request_line, replace_headers(head.headers, (b"expect",), [])))
    if head.expects_continue:
        client.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    pump = asyncio.ensure_future(copy_body(client.reader, upstream.writer, head.framing, head.length,
                                           pause=limits.body_timeout))
    answer = asyncio.ensure_future(_final_response(upstream, client, forwarded.method))
    try:
        await asyncio.wait({pump, answer}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done() and pump.exception() is None:  # the whole body is sent: the answer is next
            await unless_peer_leaves(client.reader, asyncio.wait({answer}))
    except BaseException:  # the client left, or the gateway stops: neither task outlives the exchange
        pump.cancel()
        answer.cancel()
        link.discard()
        raise
    failure = _streamed_failure(answer, pump, limits)
    if failure is not None:
        pump.cancel()
        answer.cancel()
        link.discard()
        if not failure.status:  # the client left: nobody to answer
            outcome.note, outcome.keep_alive, outcome.fault = failure.message, False, failure.fault
            return outcome
        return await send_error(client, failure.status, failure.message, False, outcome, scope, fault=failure.fault)
    response = answer.result()
    if scope.warnings:  # a copy: parsed heads are shared (the parser's memo), never changed
        response = dataclasses.replace(response, raw=with_warnings(response.raw, _warnings(scope)))
    return await _deliver(client, upstream, link, head.keep_alive, response, pump, limits, outcome, None)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why a streamed exchange has no response to relay (``status`` 0: the client left, nobody to answer)."""

    status: int
    message: str
    fault: Side


def _streamed_failure(answer: asyncio.Future[ResponseHead], pump: asyncio.Future[None],
                      limits: Limits) -> _Failure | None:
    """Why a streamed exchange has no response to relay, or None when the daemon's answer is in. The side at
    fault is named: a body the client stopped sending or framed wrong is its own; a daemon that answered wrong
    or left is a 502."""
    if answer.done() and not answer.cancelled():
        error = answer.exception()
        if error is None:
            return None
        if isinstance(error, MalformedMessage):
            return _Failure(502, f"the daemon sent a malformed response ({error})", Side.DAEMON)
        return _Failure(502, f"the daemon closed the connection while the request body was sent ({error})",
                        Side.DAEMON)
    error = pump.exception()
    if isinstance(error, TimeoutError):
        return _Failure(408, f"request body paused for more than {limits.body_timeout:g}s", Side.CLIENT)
    if isinstance(error, MalformedMessage):
        return _Failure(error.status, f"powerstrip: {error}", Side.CLIENT)
    if isinstance(error, PeerClosed):
        return _Failure(0, "the client closed the connection inside the request body", Side.CLIENT)
    return _Failure(502, f"the daemon stopped taking the request body ({error})", Side.DAEMON)


async def _refuse_unread(client: Stream, status: int, message: str, outcome: Outcome,
                         scope: ExchangeScope | None, fault: Side) -> Outcome:
    """An answer to a request whose body was not read: the connection closes, after a bounded read of what the
    client still sends (so that it reads the answer rather than a reset)."""
    await send_error(client, status, message, False, outcome, scope, fault=fault)
    await discard_input(client.reader, LINGER_BYTES, LINGER_SECONDS)
    return outcome


async def _hooked(
    client: Stream, peer: Peer, link: DaemonLink, head: RequestHead, route: Route,
    adapters: dict[str, Adapter], limits: Limits, scope: ExchangeScope,
) -> Outcome | Judged:
    outcome = Outcome(uid=exchange_uid())
    chain = ChainRun(adapters, outcome.hooks)
    if head.framing is Framing.LENGTH and head.length > limits.max_body_size:
        # refused from its declared length: a client waiting for 100 Continue is not invited to send it
        await send_error(client, 413, _too_large(limits), False, outcome, fault=Side.CLIENT)
        await discard_input(client.reader, LINGER_BYTES, LINGER_SECONDS)
        return outcome
    try:  # parameters dockerd would read otherwise than the hooks: refused before the body is invited
        check_parameters(head.target, head.raw)
    except AmbiguousRequest as exc:
        keep_alive = head.keep_alive and head.framing is Framing.NONE
        await send_error(client, 400, f"powerstrip: {exc}", keep_alive, outcome, fault=Side.CLIENT)
        if not keep_alive:
            await discard_input(client.reader, LINGER_BYTES, LINGER_SECONDS)
        return outcome
    if head.expects_continue:
        client.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        if head.framing is Framing.NONE:
            body = b""  # most hooked requests: nothing to wait for (and no timeout to arm)
        elif head.framing is Framing.LENGTH and (ready := client.reader.take_ready(head.length)) is not None:
            body = ready  # it came with its head, as most do
        else:
            async with asyncio.timeout(limits.body_timeout):
                body = await read_body(client.reader, head.framing, head.length, limits.max_body_size)
    except BodyTooLarge:
        await send_error(client, 413, _too_large(limits), False, outcome, fault=Side.CLIENT)
        await discard_input(client.reader, LINGER_BYTES, LINGER_SECONDS)
        return outcome
    except TimeoutError:
        return await send_error(client, 408, f"request body not received within {limits.body_timeout:g}s",
                                False, outcome, fault=Side.CLIENT)
    except MalformedMessage as exc:  # a framing the hooks cannot de-frame: nothing is forwarded
        return await send_error(client, exc.status, f"powerstrip: {exc}", False, outcome, fault=Side.CLIENT)
    try:
        headers = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in head.headers)
        text, found = judged(head.method, head.target, _decode(body))
    except UnicodeDecodeError:
        return await send_error(client, 400, "request body is not UTF-8 text; the hooks on this endpoint "
                                "(protocol v1) can only be given text, so it is refused", head.keep_alive, outcome,
                                fault=Side.CLIENT)
    except BodyRefused as refused:
        return await send_error(client, 400, f"powerstrip: {refused}", head.keep_alive, outcome, fault=Side.CLIENT)
    request = ClientRequest(head.method, head.target, text, headers, outcome.uid, is_dry_run(head), peer, scope,
                            DecodedBody(found.text, found.value) if found is not None else None)
    try:
        forwarded = await chain.pre(route.pre, request)
        if forwarded.dry_run:
            return await _dry_run_answer(client, head, forwarded, outcome)
        body = forwarded.body.encode("utf-8") if forwarded.body is not None else b""
        relayed = not route.post and not scope.warnings and not scope.awaits_end  # the machine relays the answer
        if relayed and forwarded is request and head.framing is Framing.NONE and not head.expects_continue:
            return Judged(head, b"", head.keep_alive, outcome)  # unchanged, no body: its head goes as it came
        forwarded_head = _forwarded_head(head, forwarded, body)
        if relayed:
            return Judged(parse_request_head(forwarded_head), body, head.keep_alive, outcome)
    except ChainStopped as stop:
        return await send_error(client, stop.status, stop.message, head.keep_alive, outcome, scope, fault=stop.fault)
    except Exception as exc:  # noqa: BLE001 - a failure in the hook path is answered, never a dropped connection
        log.exception("the pre-hook path failed (uid %s)", outcome.uid)
        return await send_error(client, 502, f"powerstrip: the pre-hooks failed ({type(exc).__name__}: "
                                f"{str(exc)[:200]}); nothing was forwarded to the daemon", head.keep_alive, outcome,
                                scope, fault=Side.GATEWAY)
    try:
        upstream = await link.connect()
    except DaemonUnavailable as exc:  # after the pre-hooks: their decisions stay in the outcome
        return await send_error(client, 502, str(exc), False, outcome, scope, fault=Side.DAEMON)
    try:
        return await _forward(client, upstream, link, head, route, forwarded, forwarded_head, body, chain, limits,
                              outcome)
    except MalformedMessage as exc:  # from the daemon's side: its fault, never the client's
        link.discard()
        if outcome.status:  # the response already started: closing is the only signal left
            outcome.note, outcome.keep_alive = f"the daemon sent a malformed response ({exc})", False
            outcome.fault = Side.DAEMON
            return outcome
        return await send_error(client, 502, f"the daemon sent a malformed response ({exc})", False, outcome, scope,
                                fault=Side.DAEMON)


def _too_large(limits: Limits) -> str:
    return (f"request body larger than the gateway's limit of {limits.max_body_size} bytes; "
            "refused because the hooks could not see all of it")


async def _forward(
    client: Stream, upstream: Stream, link: DaemonLink, head: RequestHead, route: Route,
    forwarded: ClientRequest, forwarded_head: bytes, body: bytes, chain: ChainRun, limits: Limits, outcome: Outcome,
) -> Outcome:
    """Send the daemon what the pre-hooks produced; relay or collect its answer for the post-hooks.

    The hooks' warnings go into the head the client gets (``Warning`` headers after the status line), the
    rest of the daemon's head byte for byte: no post-hook and no body collection is needed for them.
    """
    scope = forwarded.scope
    upstream.writer.write(forwarded_head + body)
    await upstream.writer.drain()
    answer = _final_response(upstream, client, forwarded.method)
    response = await (answer if may_hijack(head) else unless_peer_leaves(client.reader, answer))
    if not route.post or response.status == 101 or response.framing is Framing.UNTIL_CLOSE:
        if route.post:
            log.warning("post-hooks not run for %s %s: the response is a stream", forwarded.method, forwarded.request)
        if scope.warnings:  # a copy: parsed heads are shared (the parser's memo), never changed
            response = dataclasses.replace(response, raw=with_warnings(response.raw, _warnings(scope)))
        if may_hijack(head):
            return await _deliver(client, upstream, link, head.keep_alive, response, None, limits, outcome, None)
        async with PeerWatch(client.reader) as watch:
            return await _deliver(client, upstream, link, head.keep_alive, response, None, limits, outcome, watch)

    try:
        # bounded, and ended if the client leaves: a stalled body must not hold the daemon connection
        response_body, raw_parts, open_stream = await unless_peer_leaves(
            client.reader, asyncio.wait_for(_collect_response_body(upstream, response, limits), limits.body_timeout))
    except TimeoutError:
        link.discard()
        return await send_error(client, 502, f"the daemon's response body did not arrive within "
                                f"{limits.body_timeout:g}s; the post-hooks cannot see it", False, outcome, scope,
                                fault=Side.DAEMON)
    except BodyTooLarge as exc:
        link.discard()
        return await send_error(client, 502, f"response larger than the gateway's limit of {exc.limit} bytes; "
                                "the post-hooks cannot see it, so it is refused", False, outcome, scope,
                                fault=Side.DAEMON)
    if open_stream is not None:
        log.warning("post-hooks not run for %s %s: the response is still streaming after %gs",
                    forwarded.method, forwarded.request, limits.stream_grace)
        outcome.status = response.status
        client.writer.write(with_warnings(response.raw, _warnings(scope)) + b"".join(raw_parts))
        with _streaming():
            reusable = await unless_peer_leaves(client.reader, open_stream.relay_response(client.writer))
        if not reusable or not response.keep_alive:
            link.discard()
        outcome.keep_alive = head.keep_alive and response.keep_alive
        return outcome
    if not response.keep_alive:
        link.discard()
    content_type = response.header(b"content-type")
    try:
        server_response = ServerResponse(response.status, content_type.decode("latin-1") if content_type else None,
                                         _decode(response_body))
    except UnicodeDecodeError:
        return await send_error(client, 502, "the daemon's response is not UTF-8 text; the post-hooks on this "
                                "endpoint (protocol v1) cannot see it, so it is refused", head.keep_alive, outcome,
                                scope, fault=Side.DAEMON)
    try:
        result = await chain.post(route.post, forwarded, server_response)
        modified = with_warnings(_modified_response(response, result), _warnings(scope))
    except ChainStopped as stop:
        return await send_error(client, stop.status, stop.message, head.keep_alive and response.keep_alive, outcome,
                                scope, fault=stop.fault)
    except Exception as exc:  # noqa: BLE001 - as for the pre-hooks: an answer, not a dropped connection
        log.exception("the post-hook path failed (uid %s)", outcome.uid)
        return await send_error(client, 502, f"powerstrip: the post-hooks failed ({type(exc).__name__}: "
                                f"{str(exc)[:200]}); the daemon's answer is withheld",
                                head.keep_alive and response.keep_alive, outcome, scope, fault=Side.GATEWAY)
    client.writer.write(modified)
    await client.writer.drain()
    outcome.status = result.code
    outcome.keep_alive = head.keep_alive and response.keep_alive
    return outcome
