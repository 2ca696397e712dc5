"""Protocol v2 documents: what the gateway sends, what it accepts back, and the serving side."""

from __future__ import annotations

import asyncio
import json

import pytest

from powerstrip.hooks import protocol_v2 as v2
from powerstrip.hooks.model import ClientRequest, Peer, ServerResponse
from powerstrip.hooks.service import _answer_v2
from powerstrip.sdk import Adapter, Reject, Request, Response

REQUEST = ClientRequest("POST", "/v1.41/containers/create?name=web&x=", '{"Image": "busybox"}',
                        (("Content-Type", "application/json"), ("X-Many", "a"), ("X-Many", "b")), "u-1", True,
                        Peer(uid=0, gid=0, pid=7))


def verdict(**fields) -> dict:
    return {"apiVersion": v2.API_VERSION, "kind": v2.KIND, "uid": "u-1", **fields}


def test_pre_hook_call_document() -> None:
    document = v2.call_document(REQUEST)
    assert document == {
        "apiVersion": "powerstrip/v2", "kind": "HookReview", "uid": "u-1", "phase": "pre", "dryRun": True,
        "peer": {"uid": 0, "gid": 0, "pid": 7, "address": None, "listener": None, "certSubject": None, "certCN": None,
                 "certSANs": []},
        "request": {
            "method": "POST", "target": "/v1.41/containers/create?name=web&x=", "path": "/v1.41/containers/create",
            "query": {"name": ["web"], "x": [""]},
            "headers": {"Content-Type": ["application/json"], "X-Many": ["a", "b"]},
            "object": {"Image": "busybox"}, "body": None,
        },
    }


def test_the_peer_round_trips_with_listener_and_certificate() -> None:
    peer = Peer(address="10.0.0.5:4242", listener="tcp://0.0.0.0:2376", cert_subject="O=builds,CN=ci-1", cert_cn="ci-1",
                cert_sans=("DNS:ci-1.example",))
    request, _ = v2.read_call(v2.call_document(ClientRequest("GET", "/_ping", None, (), "u", False, peer)))
    assert request.peer == peer


def test_post_hook_call_document_carries_the_response_and_text_bodies_as_body() -> None:
    document = v2.call_document(REQUEST, ServerResponse(404, "text/plain", "page not found"))
    assert document["phase"] == "post"
    assert document["response"] == {"code": 404, "contentType": "text/plain", "object": None, "body": "page not found"}


def test_allowed_verdict_with_patch_and_warnings() -> None:
    found = v2.parse_verdict(verdict(allowed=True, patch=[{"op": "add", "path": "/Labels", "value": {"a": "b"}}],
                                     warnings=["deprecated image"]), "u-1")
    assert found.allowed and found.warnings == ("deprecated image",)
    assert json.loads(v2.apply_patch(REQUEST.body, found.patch)) == {"Image": "busybox", "Labels": {"a": "b"}}


def test_denied_verdict_defaults_to_403() -> None:
    assert v2.parse_verdict(verdict(allowed=False), "u-1") == v2.Verdict(False, 403, "denied")
    assert v2.parse_verdict(verdict(allowed=False, status={"code": 409, "message": "taken"}), "u-1").status == 409


@pytest.mark.parametrize(("reply", "problem"), [
    ([], "not a"),
    ({"allowed": True}, "not a"),
    (verdict(allowed=True, uid="other"), "uid"),
    (verdict(allowed="yes"), "'allowed'"),
    (verdict(allowed=True, patch={"op": "add"}), "'patch'"),
    (verdict(allowed=True, warnings="careful"), "'warnings'"),
    (verdict(allowed=False, status={"code": 200}), "400-599"),
    (verdict(allowed=False, status={"code": 403, "message": 5}), "message"),
])
def test_invalid_verdicts(reply, problem: str) -> None:
    with pytest.raises(v2.InvalidDocument, match=problem):
        v2.parse_verdict(reply, "u-1")


def test_patches_that_do_not_apply() -> None:
    with pytest.raises(v2.InvalidDocument, match="does not apply"):
        v2.apply_patch('{"a": 1}', ({"op": "remove", "path": "/b"},))
    with pytest.raises(v2.InvalidDocument, match="not JSON"):
        v2.apply_patch("plain text", ({"op": "add", "path": "/a", "value": 1},))
    assert v2.apply_patch("plain text", ()) == "plain text"


def test_an_sdk_adapter_served_over_v2_answers_with_a_minimal_patch_or_a_denial() -> None:
    adapter = Adapter("t")

    @adapter.pre("POST /*/containers/create")
    def label(request: Request) -> None:
        if request.json.get("Image") == "forbidden":
            raise Reject(403, "not that image")
        request.json["Labels"] = {"by": f"uid {request.peer.uid}", "dry": str(request.dry_run)}

    @adapter.post("POST /*/containers/create")
    def warn(request: Request, response: Response) -> None:
        response.json["Warnings"] = ["checked"]

    call = json.loads(json.dumps(v2.call_document(REQUEST)))
    reply = asyncio.run(_answer_v2(adapter, call))
    assert reply == verdict(allowed=True, patch=[{"op": "add", "path": "/Labels", "value": {"by": "uid 0", "dry": "True"}}])
    denied = ClientRequest("POST", "/containers/create", '{"Image": "forbidden"}', uid="u-2")
    assert asyncio.run(_answer_v2(adapter, v2.call_document(denied))) == {
        "apiVersion": v2.API_VERSION, "kind": v2.KIND, "uid": "u-2", "allowed": False,
        "status": {"code": 403, "message": "not that image"}}
    post = v2.call_document(REQUEST, ServerResponse(201, "application/json", '{"Id": "abc", "Warnings": []}'))
    assert asyncio.run(_answer_v2(adapter, post))["patch"] == [{"op": "add", "path": "/Warnings/0", "value": "checked"}]
