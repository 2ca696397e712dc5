"""A real HTTP adapter for the tests: protocol v1 (or v2, paths ``v2-*``) over HTTP, one behaviour per URL path.

It runs an aiohttp server on 127.0.0.1 in a thread of its own and records every document it
receives, so tests can check what the gateway sent. ``url("label", key="a", value="b")`` gives
the URL of one behaviour; the config of a test names such URLs as its adapters.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import urlencode

from aiohttp import web


def _reply_request(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    request = dict(document["ClientRequest"], **changes)
    return {"PowerstripProtocolVersion": 1, "ModifiedClientRequest": request}


def _reply_response(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    response = dict(document["ServerResponse"], **changes)
    return {"PowerstripProtocolVersion": 1, "ModifiedServerResponse": response}


def _unchanged(document: dict[str, Any]) -> dict[str, Any]:
    if document["Type"] == "pre-hook":
        return _reply_request(document)
    return _reply_response(document)


def _edit_body(document: dict[str, Any], edit) -> dict[str, Any]:
    body = json.loads(document["ClientRequest"]["Body"] or "{}")
    edit(body)
    return _reply_request(document, Body=json.dumps(body))


def _v2_reply(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "powerstrip/v2", "kind": "HookReview", "uid": document["uid"], **fields}


def _v2_behaviour(behaviour: str, params: Any, document: dict[str, Any]) -> dict[str, Any] | None:
    """Protocol v2 answers; ``warn`` (a query parameter) adds a warning to any of them."""
    warnings = {"warnings": [params["warn"]]} if "warn" in params else {}
    if behaviour == "v2-allow":
        return _v2_reply(document, allowed=True, **warnings)
    if behaviour == "v2-label":  # patch: add a label to a create body
        patch = [{"op": "add", "path": f"/Labels/{params['key']}", "value": params["value"]}]
        return _v2_reply(document, allowed=True, patch=patch, **warnings)
    if behaviour == "v2-deny":
        status = {"code": int(params.get("code", 403)), "message": params.get("message", "denied")}
        return _v2_reply(document, allowed=False, status=status, **warnings)
    if behaviour == "v2-wrong-uid":
        return dict(_v2_reply(document, allowed=True), uid="not-the-uid")
    if behaviour == "v2-bad-patch":
        return _v2_reply(document, allowed=True, patch=[{"op": "remove", "path": "/NoSuchKey"}])
    return None


class AdapterServer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, behaviour: str, **params: Any) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"http://127.0.0.1:{self.port}/{behaviour}{query}"

    def calls_to(self, behaviour: str) -> list[dict[str, Any]]:
        return [document for name, document in self.calls if name == behaviour]

    def start(self) -> "AdapterServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{behaviour}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        behaviour = request.match_info["behaviour"]
        params = request.query
        document = await request.json()
        self.calls.append((behaviour, document))
        if behaviour.startswith("v2-"):
            reply = _v2_behaviour(behaviour, params, document)
            if reply is not None:
                return web.json_response(reply)
        if behaviour == "pass":
            return web.json_response(_unchanged(document))
        if behaviour == "label":  # pre: add a label to a create body
            return web.json_response(_edit_body(
                document, lambda body: body.setdefault("Labels", {}).__setitem__(params["key"], params["value"])))
        if behaviour == "env":  # pre: append to Env, to see chain order
            return web.json_response(_edit_body(document, lambda body: body.setdefault("Env", []).append(params["value"])))
        if behaviour == "target":  # pre: replace method and/or request target
            changes = {key: params[key] for key in ("Method", "Request") if key in params}
            return web.json_response(_reply_request(document, **changes))
        if behaviour == "null-body":  # pre: drop the body
            return web.json_response(_reply_request(document, Body=None))
        if behaviour == "respond":  # post: replace code, content type and body
            return web.json_response(_reply_response(
                document, Code=int(params["code"]), ContentType=params["type"], Body=params["body"]))
        if behaviour == "slow":
            await asyncio.sleep(float(params["seconds"]))
            return web.json_response(_unchanged(document))
        if behaviour == "status":
            return web.json_response({"message": params.get("message", "no")}, status=int(params["code"]))
        if behaviour == "garbage":
            return web.Response(text="this is not json", content_type="application/json")
        if behaviour == "missing":
            return web.json_response({"PowerstripProtocolVersion": 1})
        return web.Response(status=404, text=f"unknown behaviour {behaviour}")
