"""An adapter reached over HTTP with protocol v1 (ClusterHQ's adapters work unchanged).

The adapter's HTTP status is honoured: 2xx carries a reply, 4xx is the adapter refusing the
request (the client sees that status and message), anything else is a failure left to the
adapter's failure policy. Every call is bounded by the adapter's timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from powerstrip.config.model import AdapterSpec
from powerstrip.hooks import protocol_v1
from powerstrip.hooks.model import AdapterFailure, ClientRequest, HookRejected, ServerResponse

_SNIPPET = 200


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


class HttpAdapter:
    """Protocol v1 over HTTP POST, sharing one connection pool with the other HTTP adapters."""

    def __init__(self, spec: AdapterSpec, session: aiohttp.ClientSession) -> None:
        self.name = spec.name
        self._spec = spec
        self._session = session

    async def _call(self, document: dict[str, Any]) -> Any:
        url = self._spec.url
        try:
            async with asyncio.timeout(self._spec.timeout):
                async with self._session.post(url, json=document) as reply:
                    text = await reply.text(errors="replace")
        except TimeoutError:
            raise AdapterFailure(f"no answer from {url} within {self._spec.timeout:g}s", 504) from None
        except aiohttp.ClientError as exc:
            raise AdapterFailure(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        if 400 <= reply.status < 500:
            raise HookRejected(reply.status, _message_of(text))
        if not 200 <= reply.status < 300:
            raise AdapterFailure(f"{url} answered HTTP {reply.status}: {_message_of(text)}")
        try:
            return json.loads(text)
        except ValueError:
            raise AdapterFailure(f"invalid reply from {url}: not JSON: {text[:_SNIPPET]!r}") from None

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        reply = await self._call(protocol_v1.pre_hook_document(request))
        try:
            return protocol_v1.parse_pre_hook_reply(reply, request)
        except protocol_v1.InvalidReply as exc:
            raise AdapterFailure(f"invalid reply from {self._spec.url}: {exc}") from None

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        reply = await self._call(protocol_v1.post_hook_document(request, response))
        try:
            return protocol_v1.parse_post_hook_reply(reply, response)
        except protocol_v1.InvalidReply as exc:
            raise AdapterFailure(f"invalid reply from {self._spec.url}: {exc}") from None

    async def close(self) -> None:
        """The shared session is closed by the registry that owns it."""
