"""A hooked exchange whose hooks judge the head alone (``HeadJudge``): the body is streamed, never buffered.

``exchange.hooked`` runs for real over in-memory streams (no sockets), with the helpers of
test_exchange_scope.py; the bytes the daemon side was sent and the client side got are the oracle.
"""

from __future__ import annotations

import asyncio

import pytest

from powerstrip.config.model import AdapterSpec
from powerstrip.config.routes import Route
from powerstrip.hooks.model import ClientRequest, HookRejected, ServerResponse
from powerstrip.http.head import parse_request_head
from powerstrip.proxy import exchange
from tests.unit.test_exchange_scope import _Link, _stream

SPEC = AdapterSpec("judge", "builtin:test")
BODY = bytes(range(256)) * 4  # 1 KiB, not UTF-8: a buffered hook path would refuse it
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
LIMITS = exchange.Limits(max_body_size=16, body_timeout=0.3, stream_grace=0.2, hijack_linger=0.1)


class HeadOnly:
    """An adapter that judges by the head: it refuses, rewrites the target, or hands back a body."""

    name = "judge"
    supports_dry_run = True

    def __init__(self, refuse: bool = False, body: str | None = None, reads: bool = False) -> None:
        self.refuse, self.body, self.reads = refuse, body, reads
        self.seen: list[ClientRequest] = []

    def reads_body(self, method: str, target: str) -> bool:
        return self.reads

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        self.seen.append(request)
        if self.refuse:
            raise HookRejected(403, "not this build")
        return ClientRequest(request.method, request.request + "&labels=x", self.body)

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        return response


def _head(extra: bytes = b"") -> bytes:
    return (b"POST /v1.41/build?t=a HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
            b"Content-Length: %d\r\n" % len(BODY)) + extra + b"\r\n"


async def _run(adapter: HeadOnly, head: bytes, body: bytes, answer: bytes = ANSWER,
               after: bytes | None = None) -> tuple[bytes, bytes, exchange.Outcome]:
    """``answer`` is there from the start (an early answer); with ``after``, the daemon answers only once it
    was sent bytes ending with ``after`` (as dockerd answers a build once it read the context)."""
    link, (client, written) = _Link(b"" if after is not None else answer), _stream()
    client.reader.feed_data(body)
    task = asyncio.ensure_future(exchange.hooked(client, exchange.Peer(), link, parse_request_head(head),  # type: ignore[arg-type]
                                                 Route((SPEC,), ()), {"judge": adapter}, LIMITS))  # type: ignore[dict-item]
    if after is not None:
        while not bytes(link.sent.data).endswith(after) and not task.done():
            await asyncio.sleep(0.01)
        link.stream.reader.feed_data(answer)
    outcome = await asyncio.wait_for(task, 5)
    return bytes(written.data), bytes(link.sent.data), outcome


def test_the_body_flows_to_the_daemon_as_sent_after_the_hook_saw_the_head() -> None:
    adapter = HeadOnly()
    to_client, to_daemon, outcome = asyncio.run(_run(adapter, _head(b"Expect: 100-continue\r\n"), BODY, after=BODY))
    assert adapter.seen[0].body is None  # the hook was not given the body
    head, _, body = to_daemon.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1.41/build?t=a&labels=x HTTP/1.1\r\n") and b"\r\nContent-Length: 1024" in head
    assert b"expect" not in head.lower() and body == BODY  # the bytes as sent, over --max-body-size (16)
    assert to_client == b"HTTP/1.1 100 Continue\r\n\r\n" + ANSWER and outcome.status == 200


def test_a_refused_request_reaches_the_daemon_not_at_all_and_its_body_is_not_invited() -> None:
    to_client, to_daemon, outcome = asyncio.run(_run(HeadOnly(refuse=True), _head(b"Expect: 100-continue\r\n"), BODY))
    assert to_daemon == b"" and to_client.startswith(b"HTTP/1.1 403 ")
    assert b"100 Continue" not in to_client and b"Connection: close" in to_client and not outcome.keep_alive


def test_a_hook_cannot_give_a_streamed_request_a_body() -> None:
    to_client, to_daemon, _ = asyncio.run(_run(HeadOnly(body='{"x": 1}'), _head(), BODY))
    assert to_daemon == b"" and to_client.startswith(b"HTTP/1.1 502 ") and b"no hook reads" in to_client


def test_a_body_that_stops_arriving_is_a_408_and_the_daemon_connection_is_dropped() -> None:
    to_client, to_daemon, outcome = asyncio.run(_run(HeadOnly(), _head(), BODY[:100], answer=b""))
    assert to_daemon.endswith(BODY[:100]) and to_client.startswith(b"HTTP/1.1 408 ") and not outcome.keep_alive


def test_a_malformed_chunk_is_the_clients_400() -> None:
    head = b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
    to_client, _, _ = asyncio.run(_run(HeadOnly(), head, b"4\r\nabcd\r\nzz\r\n", answer=b""))
    assert to_client.startswith(b"HTTP/1.1 400 ") and b"chunk" in to_client


def test_an_early_answer_ends_the_exchange_and_spends_the_connection() -> None:
    to_client, _, outcome = asyncio.run(_run(HeadOnly(), _head(), BODY[:10], answer=ANSWER))
    assert to_client == ANSWER and not outcome.keep_alive  # the rest of the body never came


@pytest.mark.parametrize(("adapter", "route", "head"), [
    (HeadOnly(reads=True), Route((SPEC,), ()), _head()),           # the hook wants the body
    (HeadOnly(), Route((SPEC,), (SPEC,)), _head()),               # a post-hook: the buffered path
    (HeadOnly(), Route((SPEC,), ()), b"GET /v1.41/info HTTP/1.1\r\nHost: d\r\n\r\n"),  # no body at all
])
def test_the_buffered_path_whenever_a_hook_may_read_the_body(adapter, route, head) -> None:
    assert not exchange.head_alone_judges(route, {"judge": adapter}, parse_request_head(head))  # type: ignore[dict-item]
    assert exchange.head_alone_judges(Route((SPEC,), ()), {"judge": HeadOnly()}, parse_request_head(_head()))  # type: ignore[dict-item]


def test_an_sdk_adapter_streams_what_its_handlers_judge_by_the_head() -> None:
    """``@adapter.pre(..., body=False)``: the handler sees no body, and the body flows past it unbuffered."""
    from powerstrip.hooks.inprocess import InProcessAdapter
    from powerstrip.sdk import Adapter, Reject, Request

    sdk = Adapter("builds")
    seen: list[bytes | None] = []

    @sdk.pre("POST /*/build", body=False)
    def no_host_network(request: Request) -> None:
        seen.append(request.body)
        if "host" in request.query.get("networkmode", []):
            raise Reject(403, "no host network")

    @sdk.pre("POST /*/containers/create")
    def judge_create(request: Request) -> None: ...

    adapter = InProcessAdapter(SPEC, sdk)
    assert not adapter.reads_body("POST", "/v1.41/build?t=a") and adapter.reads_body("POST", "/containers/create")
    assert not adapter.reads_body("PUT", "/v1.41/containers/x/archive")  # no handler: nothing to read it for
    to_client, to_daemon, _ = asyncio.run(_run(adapter, _head(), BODY, after=BODY))  # type: ignore[arg-type]
    assert seen == [None] and to_daemon.endswith(BODY) and to_client == ANSWER
    refused_head = _head().replace(b"?t=a", b"?networkmode=host")
    to_client, to_daemon, _ = asyncio.run(_run(adapter, refused_head, BODY))  # type: ignore[arg-type]
    assert to_client.startswith(b"HTTP/1.1 403 ") and to_daemon == b""

    class Custom(Adapter):
        async def pre_hook(self, request):  # reads requests its own way
            return request

    assert Custom("c").reads_body("POST", "/build")
