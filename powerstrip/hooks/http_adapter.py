"""Adapters reached over HTTP: protocol v1 (ClusterHQ's adapters work unchanged) or protocol v2.

Every call is bounded by the adapter's timeout. In v1 the adapter's HTTP status is the decision:
2xx carries a reply, 4xx is the adapter refusing the request (the client sees that status and
message), anything else is a failure left to the adapter's failure policy. In v2 the decision is
in the reply document, so any non-2xx status is a failure.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp

from powerstrip.config.model import AdapterSpec
from powerstrip.hooks import protocol_v1, protocol_v2
from powerstrip.hooks.model import AdapterFailure, ClientRequest, HookRejected, ServerResponse

_SNIPPET = 200
MAX_REPLY_BYTES = 64 * 1024 * 1024  # a reply carries a whole body as a JSON string: 4x the default body cap


class ReplyTooLarge(Exception):
    pass


async def _bounded_text(reply: aiohttp.ClientResponse, limit: int) -> str:
    """The reply's body as text, refused once it passes ``limit`` bytes (never read whole into memory)."""
    if reply.content_length is not None and reply.content_length > limit:
        raise ReplyTooLarge
    parts: list[bytes] = []
    size = 0
    async for chunk in reply.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ReplyTooLarge
        parts.append(chunk)
    data = b"".join(parts)
    try:
        return data.decode(reply.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def _message_of(text: str) -> str:
    """The human part of an error body: its JSON ``message`` if it has one, else the text."""
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:_SNIPPET] or "(empty body)"
    if isinstance(document, dict):
        for key in ("message", "Message", "error", "Error"):
            if isinstance(document.get(key), str):
                return document[key]
    return text.strip()[:_SNIPPET]


class _HttpAdapter:
    """POSTs JSON documents to the adapter's URL over the registry's shared connection pool."""

    refusals_by_status = False

    def __init__(self, spec: AdapterSpec, session: aiohttp.ClientSession) -> None:
        self.name = spec.name
        self._spec = spec
        self._session = session

    async def _call(self, document: dict[str, Any]) -> Any:
        url = self._spec.url
        try:
            async with asyncio.timeout(self._spec.timeout):
                async with self._session.post(url, json=document) as reply:
                    text = await _bounded_text(reply, MAX_REPLY_BYTES)
        except ReplyTooLarge:
            raise AdapterFailure(f"the reply from {url} is larger than {MAX_REPLY_BYTES} bytes; refused") from None
        except TimeoutError:
            raise AdapterFailure(f"no answer from {url} within {self._spec.timeout:g}s", 504) from None
        except aiohttp.ClientError as exc:
            raise AdapterFailure(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        if self.refusals_by_status and 400 <= reply.status < 500:
            raise HookRejected(reply.status, _message_of(text))
        if not 200 <= reply.status < 300:
            raise AdapterFailure(f"{url} answered HTTP {reply.status}: {_message_of(text)}")
        try:
            return json.loads(text)
        except ValueError:
            raise AdapterFailure(f"invalid reply from {url}: not JSON: {text[:_SNIPPET]!r}") from None

    def _invalid(self, exc: Exception) -> AdapterFailure:
        return AdapterFailure(f"invalid reply from {self._spec.url}: {exc}")

    async def close(self) -> None:
        """The shared session is closed by the registry that owns it."""


class HttpAdapterV1(_HttpAdapter):
    """Protocol v1: whole bodies as JSON strings; a 4xx status is a refusal."""

    refusals_by_status = True
    supports_dry_run = False  # v1 documents cannot say "dry run", so the adapter might act

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        reply = await self._call(protocol_v1.pre_hook_document(request))
        try:
            return protocol_v1.parse_pre_hook_reply(reply, request)
        except protocol_v1.InvalidReply as exc:
            raise self._invalid(exc) from None

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        reply = await self._call(protocol_v1.post_hook_document(request, response))
        try:
            return protocol_v1.parse_post_hook_reply(reply, response)
        except protocol_v1.InvalidReply as exc:
            raise self._invalid(exc) from None


class HttpAdapterV2(_HttpAdapter):
    """Protocol v2: decoded objects, allowed/denied verdicts, JSON Patches, warnings (for the client's
    ``Warning`` headers), dry runs."""

    supports_dry_run = True

    async def _verdict(self, request: ClientRequest, response: ServerResponse | None) -> protocol_v2.Verdict:
        reply = await self._call(protocol_v2.call_document(request, response))
        try:
            verdict = protocol_v2.parse_verdict(reply, request.uid)
        except protocol_v2.InvalidDocument as exc:
            raise self._invalid(exc) from None
        for warning in verdict.warnings:  # to the client's Warning headers, the log and the audit (hooks.chain)
            request.scope.warn(warning)
        if not verdict.allowed:
            raise HookRejected(verdict.status, verdict.message)
        return verdict

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        verdict = await self._verdict(request, None)
        return replace(request, body=self._patched(request.body, verdict)) if verdict.patch else request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        verdict = await self._verdict(request, response)
        return replace(response, body=self._patched(response.body, verdict)) if verdict.patch else response

    def _patched(self, body: str | None, verdict: protocol_v2.Verdict) -> str | None:
        try:
            return protocol_v2.apply_patch(body, verdict.patch)
        except protocol_v2.InvalidDocument as exc:
            raise self._invalid(exc) from None


def adapter_session() -> aiohttp.ClientSession:
    """The connection pool HTTP adapters share. No cookie jar: cookies are scoped by host, not port, so adapters on
    one host would be sent each other's cookies (and every adapter its own, with each client's request); the
    protocol has no use for them."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                                 headers={"Content-Type": "application/json"}, cookie_jar=aiohttp.DummyCookieJar())


def http_adapter(spec: AdapterSpec, session: aiohttp.ClientSession) -> HttpAdapterV1 | HttpAdapterV2:
    """The client for ``spec``'s protocol."""
    return (HttpAdapterV2 if spec.protocol == 2 else HttpAdapterV1)(spec, session)
