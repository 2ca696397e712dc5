"""Serving an adapter over HTTP with protocol v1, so other gateways (ClusterHQ's too) can call it.

The same adapter object that powerstrip runs in-process answers here; its decisions map back onto
the wire the way the gateway reads them: a refusal is its 4xx status with ``{"message": ...}``, a
failure is a 500.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from powerstrip.hooks import protocol_v1
from powerstrip.hooks.model import Adapter, AdapterFailure, ClientRequest, HookRejected, ServerResponse


class BadDocument(ValueError):
    pass


def _client_request(document: dict[str, Any]) -> ClientRequest:
    section = document.get("ClientRequest")
    if not isinstance(section, dict):
        raise BadDocument("the document has no ClientRequest object")
    method, target, body = section.get("Method"), section.get("Request"), section.get("Body")
    if not isinstance(method, str) or not isinstance(target, str) or not (body is None or isinstance(body, str)):
        raise BadDocument("ClientRequest needs Method and Request strings and a Body string or null")
    return ClientRequest(method, target, body)


def _server_response(document: dict[str, Any]) -> ServerResponse:
    section = document.get("ServerResponse")
    if not isinstance(section, dict):
        raise BadDocument("a post-hook document needs a ServerResponse object")
    code, content_type, body = section.get("Code"), section.get("ContentType"), section.get("Body")
    if not isinstance(code, int) or not (content_type is None or isinstance(content_type, str)) \
            or not (body is None or isinstance(body, str)):
        raise BadDocument("ServerResponse needs a Code number, a ContentType and a Body string or null")
    return ServerResponse(code, content_type, body)


async def _answer(adapter: Adapter, document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("PowerstripProtocolVersion") != protocol_v1.VERSION:
        raise BadDocument("expected a PowerstripProtocolVersion 1 document")
    request = _client_request(document)
    if document.get("Type") == "pre-hook":
        result = await adapter.pre_hook(request)
        return {"PowerstripProtocolVersion": 1,
                "ModifiedClientRequest": {"Method": result.method, "Request": result.request, "Body": result.body}}
    if document.get("Type") == "post-hook":
        response = await adapter.post_hook(request, _server_response(document))
        return {"PowerstripProtocolVersion": 1,
                "ModifiedServerResponse": {"ContentType": response.content_type, "Body": response.body,
                                           "Code": response.code}}
    raise BadDocument("Type must be pre-hook or post-hook")


def build_app(adapter: Adapter) -> web.Application:
    """An aiohttp application: ``POST`` any path for hooks, ``GET /v1/ping`` answers ``pong``."""

    async def hook(request: web.Request) -> web.Response:
        try:
            document = json.loads(await request.text())
            return web.json_response(await _answer(adapter, document))
        except (ValueError, BadDocument) as exc:
            return web.json_response({"message": f"invalid protocol v1 document: {exc}"}, status=400)
        except HookRejected as exc:
            return web.json_response({"message": exc.message}, status=exc.status)
        except AdapterFailure as exc:
            return web.json_response({"message": exc.message}, status=500)

    async def ping(_request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def close(_app: web.Application) -> None:
        await adapter.close()

    app = web.Application()
    app.router.add_get("/v1/ping", ping)
    app.router.add_post("/{tail:.*}", hook)
    app.on_cleanup.append(close)
    return app
