"""Powerstrip protocol version 1: the JSON documents exchanged with an adapter.

Kept compatible with ClusterHQ's adapters: ``Body`` is a JSON-encoded string or null, ``Request``
carries the query string. Replies may leave out ``Method``/``Request`` (ClusterHQ's gateway
ignored them, so adapters written for it often did); a missing ``Body`` is an invalid reply.
"""

from __future__ import annotations

from typing import Any

from powerstrip.hooks.model import ClientRequest, ServerResponse

VERSION = 1


class InvalidReply(ValueError):
    """The adapter's reply is not a valid protocol v1 document."""


def _client_request(request: ClientRequest) -> dict[str, Any]:
    return {"Method": request.method, "Request": request.request, "Body": request.body}


def _server_response(response: ServerResponse) -> dict[str, Any]:
    return {"ContentType": response.content_type, "Body": response.body, "Code": response.code}


def pre_hook_document(request: ClientRequest) -> dict[str, Any]:
    return {"PowerstripProtocolVersion": VERSION, "Type": "pre-hook", "ClientRequest": _client_request(request)}


def post_hook_document(request: ClientRequest, response: ServerResponse) -> dict[str, Any]:
    return {
        "PowerstripProtocolVersion": VERSION,
        "Type": "post-hook",
        "ClientRequest": _client_request(request),
        "ServerResponse": _server_response(response),
    }


def _section(reply: Any, key: str) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise InvalidReply("the reply is not a JSON object")
    section = reply.get(key)
    if not isinstance(section, dict):
        raise InvalidReply(f"the reply has no {key} object")
    if "Body" not in section:
        raise InvalidReply(f"{key} has no Body")
    body = section["Body"]
    if body is not None and not isinstance(body, str):
        raise InvalidReply(f"{key}.Body must be a string or null")
    return section


def parse_pre_hook_reply(reply: Any, sent: ClientRequest) -> ClientRequest:
    section = _section(reply, "ModifiedClientRequest")
    method = section.get("Method", sent.method)
    target = section.get("Request", sent.request)
    if not isinstance(method, str) or not method.isalpha() or not method.isupper():
        raise InvalidReply("ModifiedClientRequest.Method must be an upper-case HTTP method")
    if not isinstance(target, str) or not target.startswith("/") or any(c in target for c in " \r\n"):
        raise InvalidReply("ModifiedClientRequest.Request must be a path starting with / (query allowed)")
    return ClientRequest(method=method, request=target, body=section["Body"])


def parse_post_hook_reply(reply: Any, sent: ServerResponse) -> ServerResponse:
    section = _section(reply, "ModifiedServerResponse")
    code = section.get("Code", sent.code)
    content_type = section.get("ContentType", sent.content_type)
    if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
        raise InvalidReply("ModifiedServerResponse.Code must be an HTTP status code")
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidReply("ModifiedServerResponse.ContentType must be a string or null")
    return ServerResponse(code=code, content_type=content_type, body=section["Body"])
