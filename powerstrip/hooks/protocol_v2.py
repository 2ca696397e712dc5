"""Powerstrip protocol version 2: admission-review style documents (opt-in per adapter).

Each call carries the exchange's ``uid``, the decoded JSON body as ``object`` and a ``dryRun``
flag. The adapter answers ``allowed`` (or a denial with a status), may return an RFC 6902 JSON
Patch to apply to the object instead of a whole body, and may add warnings, which the client gets as
``Warning`` headers (as Kubernetes admission's). The wire format is documented with examples in
docs/adapters.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch

from powerstrip.http.params import query_params
from powerstrip.http.paths import normalize_path
from powerstrip.hooks.model import ClientRequest, Peer, ServerResponse

API_VERSION = "powerstrip/v2"
KIND = "HookReview"
DEFAULT_DENIAL_STATUS = 403


class InvalidDocument(ValueError):
    """A document (call or reply) that is not valid protocol v2."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """An adapter's answer: allowed or not, and what to change and say."""

    allowed: bool
    status: int = DEFAULT_DENIAL_STATUS
    message: str = ""
    patch: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()


def split_body(body: str | None) -> tuple[Any, str | None]:
    """``(object, body)``: a JSON body goes as ``object``, any other text as ``body``."""
    if not body:
        return None, None
    try:
        return json.loads(body), None
    except ValueError:
        return None, body


def _headers(pairs: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in pairs:
        headers.setdefault(name, []).append(value)
    return headers


def call_document(request: ClientRequest, response: ServerResponse | None = None) -> dict[str, Any]:
    """The document sent for a pre-hook (no ``response``) or a post-hook."""
    request_object, request_body = split_body(request.body)
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "uid": request.uid,
        "phase": "pre" if response is None else "post",
        "dryRun": request.dry_run,
        "peer": {"uid": request.peer.uid, "gid": request.peer.gid, "pid": request.peer.pid,
                 "address": request.peer.address, "listener": request.peer.listener,
                 "certSubject": request.peer.cert_subject, "certCN": request.peer.cert_cn,
                 "certSANs": list(request.peer.cert_sans)},
        "request": {
            "method": request.method,
            "target": request.request,
            "path": normalize_path(request.request),
            "query": query_params(request.request),
            "headers": _headers(request.headers),
            "object": request_object,
            "body": request_body,
        },
    }
    if response is not None:
        response_object, response_body = split_body(response.body)
        document["response"] = {"code": response.code, "contentType": response.content_type,
                                "object": response_object, "body": response_body}
    return document


def parse_verdict(reply: Any, uid: str) -> Verdict:
    """Check an adapter's reply against the call it answers."""
    if not isinstance(reply, dict) or reply.get("apiVersion") != API_VERSION or reply.get("kind") != KIND:
        raise InvalidDocument(f'the reply is not a {{"apiVersion": "{API_VERSION}", "kind": "{KIND}"}} object')
    if reply.get("uid") != uid:
        raise InvalidDocument(f"the reply's uid {reply.get('uid')!r} is not the call's {uid!r}")
    allowed = reply.get("allowed")
    if not isinstance(allowed, bool):
        raise InvalidDocument("'allowed' must be true or false")
    warnings = reply.get("warnings") or []
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise InvalidDocument("'warnings' must be a list of strings")
    patch = reply.get("patch") or []
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise InvalidDocument("'patch' must be a JSON Patch: a list of operation objects")
    if allowed:
        return Verdict(True, patch=tuple(patch), warnings=tuple(warnings))
    status = reply.get("status") or {}
    if not isinstance(status, dict):
        raise InvalidDocument("'status' must be an object with 'code' and 'message'")
    code = status.get("code", DEFAULT_DENIAL_STATUS)
    if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
        raise InvalidDocument("status.code of a denial must be an HTTP error status (400-599)")
    message = status.get("message", "denied")
    if not isinstance(message, str):
        raise InvalidDocument("status.message must be a string")
    return Verdict(False, code, message, warnings=tuple(warnings))


def apply_patch(body: str | None, patch: tuple[dict[str, Any], ...]) -> str | None:
    """``body`` with the JSON Patch applied; an empty patch leaves the body byte for byte."""
    if not patch:
        return body
    document, _ = split_body(body)
    if document is None:
        raise InvalidDocument("a patch was returned but the body is not JSON")
    try:
        return json.dumps(jsonpatch.apply_patch(document, list(patch)))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise InvalidDocument(f"the patch does not apply: {exc}") from None


# --- the adapter's side: serving an adapter object over protocol v2 -----------------------------------


def _text(section: dict[str, Any], where: str) -> str | None:
    document, body = section.get("object"), section.get("body")
    if body is not None and not isinstance(body, str):
        raise InvalidDocument(f"{where}.body must be a string or null")
    return json.dumps(document) if document is not None else body


def _peer(section: Any) -> Peer:
    if not isinstance(section, dict):
        return Peer()

    def number(key: str) -> int | None:
        value = section.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def text(key: str) -> str | None:
        value = section.get(key)
        return value if isinstance(value, str) else None

    sans = section.get("certSANs")
    return Peer(number("uid"), number("gid"), number("pid"), text("address"), text("listener"), text("certSubject"),
                text("certCN"), tuple(san for san in sans if isinstance(san, str)) if isinstance(sans, list) else ())


def read_call(document: Any) -> tuple[ClientRequest, ServerResponse | None]:
    """The request (and, for a post-hook, the response) a call document describes."""
    if not isinstance(document, dict) or document.get("apiVersion") != API_VERSION:
        raise InvalidDocument(f"expected an apiVersion {API_VERSION} document")
    section, uid, phase = document.get("request"), document.get("uid"), document.get("phase")
    if not isinstance(section, dict) or not isinstance(uid, str) or phase not in ("pre", "post"):
        raise InvalidDocument("a call needs a uid string, phase 'pre' or 'post' and a request object")
    method, target, headers = section.get("method"), section.get("target"), section.get("headers") or {}
    if not isinstance(method, str) or not isinstance(target, str) or not isinstance(headers, dict):
        raise InvalidDocument("request needs method and target strings")
    pairs = tuple((name, value) for name, values in headers.items() for value in values)
    request = ClientRequest(method, target, _text(section, "request"), pairs, uid, bool(document.get("dryRun")),
                            _peer(document.get("peer")))
    if phase == "pre":
        return request, None
    answer = document.get("response")
    if not isinstance(answer, dict) or not isinstance(answer.get("code"), int):
        raise InvalidDocument("a post-hook call needs a response object with a code")
    content_type = answer.get("contentType")
    return request, ServerResponse(answer["code"], content_type if isinstance(content_type, str) else None,
                                   _text(answer, "response"))


def allowed_reply(uid: str, before: str | None, after: str | None, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """An allowing reply whose patch turns body ``before`` into ``after``."""
    reply: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "uid": uid, "allowed": True}
    if warnings:
        reply["warnings"] = list(warnings)
    if after != before:
        old, _ = split_body(before)
        new, new_text = split_body(after)
        if old is None or new_text is not None or new is None:
            raise InvalidDocument("the adapter replaced a body in a way a JSON Patch cannot carry "
                                  "(not JSON before or after); serve it with protocol 1")
        reply["patch"] = jsonpatch.make_patch(old, new).patch
    return reply


def denied_reply(uid: str, status: int, message: str, warnings: Sequence[str] = ()) -> dict[str, Any]:
    reply: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "uid": uid, "allowed": False,
                             "status": {"code": status, "message": message}}
    if warnings:
        reply["warnings"] = list(warnings)
    return reply
