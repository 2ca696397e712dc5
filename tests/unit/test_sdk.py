"""The adapter SDK: handler registration, matching, editing, refusing, failing."""

from __future__ import annotations

import asyncio
import json

import pytest

from powerstrip.hooks.model import AdapterFailure, ClientRequest, HookRejected, Peer, ServerResponse
from powerstrip.sdk import Adapter, Reject, Request, Response

CREATE = "POST /*/containers/create"
BODY = '{"Image":  "busybox",   "Cmd": ["true"]}'  # odd spacing: an untouched body must stay byte for byte


def run(coro):
    return asyncio.run(coro)


def create(body: str | None = BODY, target: str = "/v1.41/containers/create?name=web") -> ClientRequest:
    return ClientRequest("POST", target, body, (("Content-Type", "application/json"), ("X-A", "1")), "uid-1",
                         False, Peer(uid=1000, gid=1000, pid=42))


def test_unmatched_and_read_only_handlers_forward_the_very_same_request() -> None:
    adapter = Adapter("t")
    seen: list[Request] = []

    @adapter.pre(CREATE)
    def look(request: Request) -> None:
        seen.append(request)
        assert request.json["Image"] == "busybox"

    sent = create()
    assert run(adapter.pre_hook(sent)) is sent
    other = ClientRequest("GET", "/v1.41/containers/json", None)
    assert run(adapter.pre_hook(other)) is other
    request = seen[0]
    assert (request.method, request.path, request.query) == ("POST", "/v1.41/containers/create", {"name": ["web"]})
    assert request.headers["content-type"] == "application/json"  # case-insensitive
    assert (request.uid, request.peer.uid, request.dry_run) == ("uid-1", 1000, False)


def test_in_place_json_edits_are_forwarded_and_handlers_chain_in_order() -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def first(request: Request) -> None:
        request.json.setdefault("Labels", {})["a"] = "1"

    @adapter.pre("POST /*")
    async def second(request: Request) -> None:
        await asyncio.sleep(0)
        request.json["Labels"]["b"] = request.json["Labels"]["a"] + "2"

    forwarded = run(adapter.pre_hook(create()))
    assert json.loads(forwarded.body) == {"Image": "busybox", "Cmd": ["true"], "Labels": {"a": "1", "b": "12"}}
    assert (forwarded.uid, forwarded.headers, forwarded.peer.pid) == ("uid-1", create().headers, 42)


def test_target_and_body_can_be_assigned() -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def rewrite(request: Request) -> None:
        request.target = "/v1.41/containers/create?name=renamed"
        request.body = "{}"

    forwarded = run(adapter.pre_hook(create()))
    assert (forwarded.request, forwarded.body) == ("/v1.41/containers/create?name=renamed", "{}")


def test_a_handler_may_return_a_replacement() -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def replace(request: Request) -> Request:
        other = Request(ClientRequest("POST", "/containers/create", '{"Image": "x"}'))
        return other

    assert run(adapter.pre_hook(create())).body == '{"Image": "x"}'


@pytest.mark.parametrize("how", ["raise", "return"])
def test_reject_refuses_with_status_and_message(how: str) -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def refuse(request: Request) -> Reject | None:
        refusal = Reject(409, "name taken")
        if how == "raise":
            raise refusal
        return refusal

    with pytest.raises(HookRejected) as caught:
        run(adapter.pre_hook(create()))
    assert (caught.value.status, caught.value.message) == (409, "name taken")


def test_a_reject_needs_an_error_status() -> None:
    with pytest.raises(ValueError):
        Reject(200, "fine")


def test_a_crashing_handler_is_an_adapter_failure_naming_it() -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def broken(request: Request) -> None:
        raise KeyError("HostConfig")

    with pytest.raises(AdapterFailure, match="broken raised KeyError"):
        run(adapter.pre_hook(create()))


def test_a_wrong_return_type_is_an_adapter_failure() -> None:
    adapter = Adapter("t")

    @adapter.pre(CREATE)
    def wrong(request: Request) -> str:
        return "yes"

    with pytest.raises(AdapterFailure, match="returned str"):
        run(adapter.pre_hook(create()))


def test_patterns_are_checked_when_registered() -> None:
    adapter = Adapter("t")
    with pytest.raises(ValueError, match="METHOD /path-glob"):
        adapter.pre("post /containers/create")
    with pytest.raises(ValueError, match="at least one"):
        adapter.post()


def test_patterns_match_the_cleaned_decoded_path_like_the_gateway() -> None:
    adapter = Adapter("t")
    calls: list[str] = []
    adapter.pre(CREATE)(lambda request: calls.append(request.target))
    for target in ("/containers/create", "/v1.41/x/../containers%2Fcreate", "/v1.41/containers/json?x=/containers/create"):
        run(adapter.pre_hook(create(target=target)))
    assert calls == ["/containers/create", "/v1.41/x/../containers%2Fcreate"]


def test_post_handlers_edit_the_response() -> None:
    adapter = Adapter("t")

    @adapter.post("GET /*/containers/json")
    def hide(request: Request, response: Response) -> None:
        response.json = [c for c in response.json if not c["Names"][0].startswith("/secret")]
        response.code = 203

    answer = ServerResponse(200, "application/json", json.dumps([{"Names": ["/web"]}, {"Names": ["/secret-db"]}]))
    result = run(adapter.post_hook(ClientRequest("GET", "/v1.41/containers/json", None), answer))
    assert (result.code, json.loads(result.body)) == (203, [{"Names": ["/web"]}])
    untouched = run(adapter.post_hook(ClientRequest("GET", "/v1.41/info", None), answer))
    assert untouched is answer


def test_no_body_reads_as_none() -> None:
    adapter = Adapter("t")
    seen: list[object] = []
    adapter.pre(CREATE)(lambda request: seen.append(request.json))
    run(adapter.pre_hook(create(body=None)))
    assert seen == [None]


def test_a_json_endpoint_body_that_is_not_json_is_refused_not_none() -> None:
    adapter = Adapter("t")
    adapter.pre(CREATE)(lambda request: request.json)
    with pytest.raises(HookRejected) as refused:
        run(adapter.pre_hook(create(body="not json")))
    assert refused.value.status == 400 and "not JSON" in refused.value.message


def test_a_body_of_an_endpoint_without_json_that_is_not_json_reads_as_none() -> None:
    adapter = Adapter("t")
    seen: list[object] = []
    adapter.pre("POST /*/build")(lambda request: seen.append(request.json))
    run(adapter.pre_hook(ClientRequest("POST", "/v1.41/build", "a tar stream, say")))
    assert seen == [None]


def test_json_is_the_body_as_dockerd_reads_it() -> None:
    adapter = Adapter("t")
    seen: list[object] = []
    adapter.pre(CREATE)(lambda request: seen.append(request.json))
    run(adapter.pre_hook(create(body='{"image": "x", "hostconfig": {"privileged": true}}')))
    assert seen == [{"Image": "x", "HostConfig": {"Privileged": True, "NetworkMode": "default"}}]
