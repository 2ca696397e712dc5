"""powerstrip.sdk.testing: an adapter's unit tests see what the gateway would make of its decisions."""

from __future__ import annotations

import asyncio

import pytest

from examples.owner_policy import adapter as owner_policy
from powerstrip.sdk import Adapter, Reject, Request, Response
from powerstrip.sdk.testing import Peer, post, post_async, pre, pre_async

CREATE = "POST /v1.41/containers/create"


def test_the_tutorial_adapter_refuses_privileged_and_labels_the_rest() -> None:
    refused = pre(owner_policy, CREATE, json={"Image": "busybox", "HostConfig": {"Privileged": True}},
                  peer=Peer(uid=0))
    assert (refused.allowed, refused.status, refused.outcome) == (False, 403, "rejected")
    assert refused.message == "adapter owner-policy: privileged containers are not allowed here"
    allowed = pre(owner_policy, CREATE, json={"Image": "busybox"}, peer=Peer(uid=0))
    assert (allowed.allowed, allowed.status, allowed.outcome) == (True, None, "ok")
    assert allowed.json == {"Image": "busybox", "Labels": {"owner": "root"}}
    assert (allowed.method, allowed.target) == ("POST", CREATE.split()[1])


def test_the_config_name_is_the_one_the_client_reads() -> None:
    verdict = pre(owner_policy, CREATE, json={"Image": "x", "HostConfig": {"Privileged": True}}, name="policy")
    assert verdict.message == "adapter policy: privileged containers are not allowed here"


def test_the_body_is_the_one_dockerd_would_read() -> None:
    adapter = Adapter("t")
    seen: list[object] = []

    @adapter.pre("POST /*/containers/create")
    def look(request: Request) -> None:
        seen.append(request.json["Image"])

    # dockerd matches field names without regard to case: the hook sees the value dockerd would use
    pre(adapter, CREATE, body='{"image": "busybox"}')
    assert seen == ["busybox"]
    ambiguous = pre(adapter, CREATE, body='{"Image": "a", "image": "b"}')
    assert (ambiguous.status, ambiguous.outcome) == (400, "not called")
    assert ambiguous.message.startswith("powerstrip: Image: set by the keys 'Image' and 'image'")
    assert seen == ["busybox"]


def test_parameters_dockerd_would_read_otherwise_are_refused_before_the_hook() -> None:
    adapter = Adapter("t")
    verdict = pre(adapter, "POST /v1.41/containers/prune?filters=a;b")
    assert verdict.status == 400 and "';'" in verdict.message
    form = pre(adapter, "POST /v1.41/containers/prune", body="filters=x",
               headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert form.status == 400 and "form" in form.message


def test_a_failing_handler_follows_the_failure_policy() -> None:
    adapter = Adapter("t")

    @adapter.pre("GET /*")
    def broken(request: Request) -> None:
        raise KeyError("oops")

    failed = pre(adapter, "GET /v1.41/info")
    assert (failed.status, failed.outcome) == (502, "failed")
    assert failed.message.startswith("adapter t: handler test_a_failing_handler_follows_the_failure_policy.<locals>"
                                     ".broken raised KeyError")
    ignored = pre(adapter, "GET /v1.41/info", failure_policy="ignore")
    assert (ignored.allowed, ignored.outcome) == (True, "ignored")


def test_a_handler_that_waits_too_long_is_cut_at_the_timeout() -> None:
    adapter = Adapter("t")

    @adapter.pre("GET /*")
    async def slow(request: Request) -> None:
        await asyncio.sleep(5)

    verdict = pre(adapter, "GET /v1.41/info", timeout=0.05)
    assert (verdict.status, verdict.outcome) == (504, "failed")
    assert verdict.message == "adapter t: no answer within 0.05s"


def test_warnings_end_callbacks_and_dry_runs() -> None:
    adapter = Adapter("lint")
    ended: list[str] = []

    @adapter.pre("POST /*/containers/create")
    def lint(request: Request) -> None:
        if request.dry_run:
            raise Reject(409, "dry run seen")
        request.warn("image busybox is not pinned")
        assert request.on_end(lambda: ended.append("slot given back"))

    verdict = pre(adapter, CREATE, json={"Image": "busybox"})
    assert verdict.warnings == ("adapter lint: image busybox is not pinned",)
    assert ended == ["slot given back"]
    assert pre(adapter, CREATE, json={"Image": "busybox"}, dry_run=True).message == "adapter lint: dry run seen"


def test_a_validating_adapter_only_decides() -> None:
    adapter = Adapter("t")

    @adapter.pre("POST /*/containers/create")
    def edit(request: Request) -> None:
        request.json["Labels"] = {"a": "b"}

    assert pre(adapter, CREATE, json={"Image": "x"}).json == {"Image": "x", "Labels": {"a": "b"}}
    assert pre(adapter, CREATE, json={"Image": "x"}, kind="validating").json == {"Image": "x"}


def test_post_hooks_change_or_withhold_the_answer() -> None:
    adapter = Adapter("t")

    @adapter.post("GET /*/containers/json")
    def hide(request: Request, response: Response) -> Reject | None:
        if request.query.get("all") == ["1"]:
            return Reject(403, "not all of them")
        response.json = [c for c in response.json if c["Labels"].get("owner") == "alice"]
        return None

    answer = [{"Id": "1", "Labels": {"owner": "alice"}}, {"Id": "2", "Labels": {"owner": "bob"}}]
    shown = post(adapter, "GET /v1.41/containers/json", json=answer)
    assert (shown.allowed, shown.status, shown.content_type) == (True, 200, "application/json")
    assert shown.json == [{"Id": "1", "Labels": {"owner": "alice"}}]
    withheld = post(adapter, "GET /v1.41/containers/json?all=1", json=answer)
    assert (withheld.allowed, withheld.status) == (False, 403)
    assert withheld.json == {"message": "adapter t: not all of them"}


def test_bad_calls_say_what_is_wrong() -> None:
    adapter = Adapter("t")
    with pytest.raises(ValueError, match="METHOD /target"):
        pre(adapter, "containers/create")
    with pytest.raises(ValueError, match="not both"):
        pre(adapter, CREATE, json={}, body="{}")
    with pytest.raises(ValueError, match="would refuse this request"):
        post(adapter, "GET /v1.41/containers/json?x=%zz")


def test_inside_a_running_loop_the_async_forms_are_used() -> None:
    adapter = Adapter("t")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="await pre_async"):
            pre(adapter, "GET /v1.41/info")
        assert (await pre_async(adapter, "GET /v1.41/info")).allowed
        assert (await post_async(adapter, "GET /v1.41/info", json={})).status == 200

    asyncio.run(main())


def test_a_body_no_handler_reads_is_streamed_as_sent() -> None:
    adapter = Adapter("t")
    seen: list[str | None] = []

    @adapter.pre("POST /*/build", body=False)
    def judge(request: Request) -> Reject | None:
        seen.append(request.body)
        return Reject(403, "no host network") if request.query.get("networkmode") == ["host"] else None

    archive = "not JSON: a build context"
    allowed = pre(adapter, "POST /v1.41/build?t=web", body=archive, headers=[("Content-Type", "application/x-tar")])
    assert (allowed.allowed, allowed.body, seen) == (True, archive, [None])
    refused = pre(adapter, "POST /v1.41/build?networkmode=host", body=archive,
                  headers=[("Content-Type", "application/x-tar")])
    assert (refused.status, refused.message) == (403, "adapter t: no host network")

    @adapter.pre("POST /*/images/load", body=False)
    def give_body(request: Request) -> None:
        request.body = "{}"

    given = pre(adapter, "POST /v1.41/images/load", body=archive, headers=[("Content-Type", "application/x-tar")])
    assert (given.status, given.message) == (502, "powerstrip: a pre-hook gave a body to a request whose body no "
                                                  "hook reads")
