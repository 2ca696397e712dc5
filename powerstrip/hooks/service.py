"""Serving an adapter over HTTP, so other gateways (ClusterHQ's too) can call it.

One endpoint answers both protocols, told apart by the document: ``PowerstripProtocolVersion: 1``
or ``apiVersion: powerstrip/v2``. The same adapter object that powerstrip runs in-process answers
here, and its decisions map onto the wire the way the gateway reads them back. v1: a refusal is its
4xx status with ``{"message": ...}``, a failure a 500. v2: a refusal is a denial verdict, a change
a JSON Patch, the adapter's warnings the reply's ``warnings``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from powerstrip.hooks import protocol_v1, protocol_v2
from powerstrip.hooks.model import Adapter, AdapterFailure, ClientRequest, HookRejected, ServerResponse

log = logging.getLogger("powerstrip.hooks")


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


async def _answer_v1(adapter: Adapter, document: dict[str, Any]) -> dict[str, Any]:
    """Protocol v1 has no place for warnings: the adapter's are logged here."""
    request = _client_request(document)
    try:
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
    finally:
        for warning in request.scope.warnings:
            log.warning("adapter %s warns (protocol 1 cannot carry it to the gateway): %s", adapter.name, warning)


async def _answer_v2(adapter: Adapter, document: dict[str, Any]) -> dict[str, Any]:
    """The adapter's warnings (``request.scope``) go in the reply, for the calling gateway's client."""
    request, response = protocol_v2.read_call(document)
    warnings = request.scope.warnings
    try:
        if response is None:
            result = await adapter.pre_hook(request)
            if (result.method, result.request) != (request.method, request.request):
                raise AdapterFailure("the adapter changed the method or target, which protocol 2 cannot carry; "
                                     "call it with protocol 1")
            return protocol_v2.allowed_reply(request.uid, request.body, result.body, warnings)
        answer = await adapter.post_hook(request, response)
        if (answer.code, answer.content_type) != (response.code, response.content_type):
            raise AdapterFailure("the adapter changed the status or content type, which protocol 2 cannot carry; "
                                 "call it with protocol 1")
        return protocol_v2.allowed_reply(request.uid, response.body, answer.body, warnings)
    except HookRejected as refusal:
        return protocol_v2.denied_reply(request.uid, refusal.status, refusal.message, warnings)


def build_app(adapter: Adapter) -> web.Application:
    """An aiohttp application: ``POST`` any path for hooks, ``GET /v1/ping`` answers ``pong``."""

    async def hook(request: web.Request) -> web.Response:
        try:
            document = json.loads(await request.text())
            if isinstance(document, dict) and document.get("apiVersion") == protocol_v2.API_VERSION:
                return web.json_response(await _answer_v2(adapter, document))
            if isinstance(document, dict) and document.get("PowerstripProtocolVersion") == protocol_v1.VERSION:
                return web.json_response(await _answer_v1(adapter, document))
            raise BadDocument(f"expected a PowerstripProtocolVersion 1 or an apiVersion {protocol_v2.API_VERSION} "
                              "document")
        except (ValueError, BadDocument) as exc:
            return web.json_response({"message": f"invalid document: {exc}"}, status=400)
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
