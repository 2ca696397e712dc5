"""Testing an adapter without a gateway or a daemon, in the adapter's own unit tests.

A request goes through what the gateway does around a hook: the target's parameters read as dockerd
reads them (refused when they are ambiguous), the body decoded as dockerd decodes it (refused when it
is not one meaning), the adapter called as an in-process adapter under its timeout and failure policy,
a changed request checked and canonicalised again, the exchange's end callbacks run after. The test
reads a named verdict: what the client would get when the request is refused (status and message, as
the docker CLI prints them), or what the daemon would be sent.

    from powerstrip.sdk.testing import Peer, pre

    def test_privileged_is_refused():
        verdict = pre(adapter, "POST /v1.41/containers/create",
                      json={"Image": "busybox", "HostConfig": {"Privileged": True}}, peer=Peer(uid=1000))
        assert verdict.status == 403
        assert verdict.message == "adapter owner-policy: privileged containers are not allowed here"

The adapter may also be an HTTP adapter's URL (``pre("http://127.0.0.1:8080/", ..., protocol=2)``): it is
then called over HTTP with protocol v1 or v2, as the gateway would call it, whatever it is written in.

``pre`` and ``post`` run their own event loop; inside an ``async`` test, ``await pre_async(...)`` and
``await post_async(...)`` instead. ``powerstrip adapter try`` is the same from the command line.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from powerstrip.canonical import BodyRefused, judged
from powerstrip.config.model import DEFAULT_ADAPTER_TIMEOUT, AdapterKind, AdapterSpec, FailurePolicy
from powerstrip.hooks.chain import ChainRun, ChainStopped, check_streamed
from powerstrip.hooks.http_adapter import adapter_session, http_adapter
from powerstrip.hooks.inprocess import InProcessAdapter
from powerstrip.hooks.model import Adapter, ClientRequest, DecodedBody, Peer, ServerResponse, parse_peer
from powerstrip.hooks.scope import ExchangeScope
from powerstrip.http.head import MalformedMessage, parse_request_head
from powerstrip.http.params import AmbiguousRequest, check_parameters

__all__ = ["Peer", "PostVerdict", "PreVerdict", "parse_peer", "post", "post_async", "pre", "pre_async"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PreVerdict:
    """What the pre-hook decided about one request.

    Refused: ``status`` and ``message`` are what the client gets (``{"message": ...}``), and the request
    fields are the request as it was sent. Allowed: ``status`` is ``None`` and the request fields are what
    the daemon would be sent.
    """

    status: int | None
    message: str | None
    method: str
    target: str
    body: str | None
    warnings: tuple[str, ...]  # the client's Warning headers, as it reads them ("adapter NAME: ...")
    outcome: str               # the hook's record: "ok", "rejected", "failed", "ignored", "skipped" (dry run);
                               # "not called" when the gateway refused the request first

    @property
    def allowed(self) -> bool:
        return self.status is None

    @property
    def json(self) -> Any:
        """The body as JSON (``None`` without a body)."""
        return jsonlib.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class PostVerdict:
    """What the post-hook made of one response: the status, content type and body the client gets.

    Refused: ``status`` and ``message`` are the error the client gets instead of the daemon's answer
    (``body`` is then that error's JSON).
    """

    status: int
    message: str | None
    content_type: str | None
    body: str | None
    warnings: tuple[str, ...]
    outcome: str

    @property
    def allowed(self) -> bool:
        return self.message is None

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class _Hooked:
    """The adapter as the gateway would run it, under the config entry the test describes."""

    spec: AdapterSpec
    adapter: Adapter
    chain: ChainRun

    def reads_body(self, method: str, target: str) -> bool:
        """An HTTP adapter is always sent the body; an in-process one says (``body=False`` handlers)."""
        reads = getattr(self.adapter, "reads_body", None)
        return True if reads is None else bool(reads(method, target))

    @property
    def outcome(self) -> str:
        return self.chain.records[-1].outcome if self.chain.records else "ok"


@asynccontextmanager
async def _hooked(adapter: Adapter | str, name: str | None, timeout: float, failure_policy: FailurePolicy,
                  kind: AdapterKind, protocol: int) -> AsyncIterator[_Hooked]:
    """``adapter`` under a config entry: an SDK adapter in-process, a URL over HTTP (with a session of its own)."""
    if isinstance(adapter, str):
        if not adapter.startswith(("http://", "https://")):
            raise ValueError(f"{adapter!r}: give an adapter object, or an HTTP adapter's http:// or https:// URL")
        spec = AdapterSpec(name or "adapter", adapter, timeout, failure_policy, protocol, kind)
        async with adapter_session() as session:
            over_http = http_adapter(spec, session)
            yield _Hooked(spec, over_http, ChainRun({spec.name: over_http}))
        return
    spec = AdapterSpec(name or getattr(adapter, "name", None) or "adapter", "python:test", timeout, failure_policy,
                       kind=kind)
    in_process = InProcessAdapter(spec, adapter)
    yield _Hooked(spec, in_process, ChainRun({spec.name: in_process}))


class _Refused(Exception):
    """The gateway itself refuses the request, before any hook runs (400, ``powerstrip: ...``)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """The request the test describes, as the client sends it."""

    method: str
    target: str
    body: str | None
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, request_line: str, json: Any, body: str | None, headers: Sequence[tuple[str, str]]) -> _Sent:
        method, _, target = request_line.partition(" ")
        if not method or not target.startswith("/") or " " in target:
            raise ValueError(f"{request_line!r} is not \"METHOD /target\" (e.g. \"POST /v1.41/containers/create\")")
        if json is not None and body is not None:
            raise ValueError("give json= or body=, not both")
        if json is not None:
            body = jsonlib.dumps(json)
        sent = tuple(headers)
        if body is not None and not any(name.lower() == "content-type" for name, _ in sent):
            sent += (("Content-Type", "application/json"),)
        return cls(method, target, body, sent)

    def hooked(self, peer: Peer | None, dry_run: bool, scope: ExchangeScope, streamed: bool) -> ClientRequest:
        """What the hook is given: the body as dockerd decodes it, or none when it is streamed to the daemon unread
        (every pre-hook judges the request by its head: ``body=False``)."""
        head = f"{self.method} {self.target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in self.headers) + "\r\n"
        try:
            parse_request_head(head.encode("latin-1"))
            check_parameters(self.target, head.encode("latin-1"))
            text, found = (None, None) if streamed else judged(self.method, self.target, self.body)
        except (MalformedMessage, AmbiguousRequest, BodyRefused) as exc:
            raise _Refused(f"powerstrip: {exc}") from None
        return ClientRequest(self.method, self.target, text, self.headers, "test-uid", dry_run, peer or Peer(), scope,
                             DecodedBody(found.text, found.value) if found is not None else None)


async def pre_async(adapter: Adapter | str, request_line: str, *, json: Any = None, body: str | None = None,
                    headers: Sequence[tuple[str, str]] = (), peer: Peer | None = None, dry_run: bool = False,
                    name: str | None = None, timeout: float = DEFAULT_ADAPTER_TIMEOUT,
                    failure_policy: FailurePolicy = "fail", kind: AdapterKind = "mutating",
                    protocol: int = 1) -> PreVerdict:
    """Run ``adapter``'s pre-hook on ``request_line`` (``"POST /v1.41/containers/create?name=web"``) with a
    body given as ``json`` (an object) or ``body`` (text); ``name`` is the adapter's name in adapters.yml
    (its own name by default), which the client's messages carry. A body the adapter does not read
    (``body=False`` handlers) is not given to it and goes to the daemon as sent, as the gateway streams it.
    ``protocol`` is an HTTP adapter's (1 or 2)."""
    described = _Sent.of(request_line, json, body, headers)
    async with _hooked(adapter, name, timeout, failure_policy, kind, protocol) as hooked:
        return await _pre(hooked, described, peer, dry_run)


async def _pre(hooked: _Hooked, described: _Sent, peer: Peer | None, dry_run: bool) -> PreVerdict:
    streamed = described.body is not None and not hooked.reads_body(described.method, described.target)
    scope = ExchangeScope(ends=True)
    try:
        sent = described.hooked(peer, dry_run, scope, streamed)
    except _Refused as refused:
        return PreVerdict(400, str(refused), described.method, described.target, described.body, (), "not called")
    try:
        forwarded = await hooked.chain.pre((hooked.spec,), sent)
        if streamed:
            check_streamed(forwarded)
    except ChainStopped as stop:
        return PreVerdict(stop.status, stop.message, described.method, described.target, described.body,
                          tuple(scope.warnings), hooked.outcome)
    finally:
        scope.end()  # the exchange is over, as the gateway's would be: the adapter's on_end callbacks run
    return PreVerdict(None, None, forwarded.method, forwarded.request, described.body if streamed else forwarded.body,
                      tuple(scope.warnings), hooked.outcome)


async def post_async(adapter: Adapter | str, request_line: str, *, request_json: Any = None,
                     request_body: str | None = None, code: int = 200, json: Any = None, body: str | None = None,
                     content_type: str | None = "application/json", headers: Sequence[tuple[str, str]] = (),
                     peer: Peer | None = None, name: str | None = None, timeout: float = DEFAULT_ADAPTER_TIMEOUT,
                     failure_policy: FailurePolicy = "fail", kind: AdapterKind = "mutating",
                     protocol: int = 1) -> PostVerdict:
    """Run ``adapter``'s post-hook on the daemon's answer (``code``, ``json`` or ``body``, ``content_type``) to
    ``request_line`` with ``request_json`` or ``request_body`` (the request as the daemon was sent it)."""
    scope = ExchangeScope(ends=True)
    try:
        sent = _Sent.of(request_line, request_json, request_body, headers).hooked(peer, False, scope, streamed=False)
    except _Refused as refused:
        raise ValueError(f"the gateway would refuse this request before any hook: {refused}") from None
    if json is not None and body is not None:
        raise ValueError("give json= or body=, not both")
    response = ServerResponse(code, content_type, jsonlib.dumps(json) if json is not None else body)
    async with _hooked(adapter, name, timeout, failure_policy, kind, protocol) as hooked:
        return await _post(hooked, sent, response, scope)


async def _post(hooked: _Hooked, sent: ClientRequest, response: ServerResponse, scope: ExchangeScope) -> PostVerdict:
    try:
        result = await hooked.chain.post((hooked.spec,), sent, response)
    except ChainStopped as stop:
        return PostVerdict(stop.status, stop.message, "application/json", jsonlib.dumps({"message": stop.message}),
                           tuple(scope.warnings), hooked.outcome)
    finally:
        scope.end()
    return PostVerdict(result.code, None, result.content_type, result.body, tuple(scope.warnings), hooked.outcome)


def pre(adapter: Adapter | str, request_line: str, **options: Any) -> PreVerdict:
    """``pre_async`` on an event loop of its own (options as there)."""
    return _run(pre_async(adapter, request_line, **options))


def post(adapter: Adapter | str, request_line: str, **options: Any) -> PostVerdict:
    """``post_async`` on an event loop of its own (options as there)."""
    return _run(post_async(adapter, request_line, **options))


def _run(call: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(call)
    call.close()
    raise RuntimeError("an event loop is already running here: use `await pre_async(...)` / `await post_async(...)`")

