"""Protocol v2 adapters over HTTP against the real daemon: patches, denials, warnings, failures, kinds."""

from __future__ import annotations

import json
import re

import docker
import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.ops import wait_for_log

pytestmark = pytest.mark.docker

CREATE = "POST /*/containers/create"


def v2(url: str, **options: object) -> dict[str, object]:
    return {"url": url, "protocol": 2, **options}


def config(pre: list[str], adapters: dict[str, object]) -> str:
    return json.dumps({"endpoints": {CREATE: {"pre": pre}}, "adapters": adapters})


@pytest.fixture
def created(dockerd, cleanup):
    """Register a container name for removal and get it from the daemon."""
    client = docker.DockerClient(base_url=dockerd.url)
    yield lambda name: cleanup.append(name) or client.containers.get(name)
    client.close()


def test_a_patch_is_applied_and_warnings_reach_the_log(make_gateway, fresh, created, uniq):
    gw = make_gateway(config(["lbl"], {"lbl": v2(fresh.url("v2-label", key="team", value="blue", warn="old image"))}))
    name = f"v2-{uniq}"
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc == 0, result.err
    assert created(name).labels == {"team": "blue"}
    call = fresh.calls_to("v2-label")[0]
    assert call["request"]["object"]["Image"] == "ps-busybox" and call["request"]["query"] == {"name": [name]}
    assert call["peer"]["uid"] == 0 and call["dryRun"] is False
    wait_for_log(gw, f"uid={call['uid']} hooks=pre:lbl=ok")  # the access line follows the response
    log = gw.log_text()
    assert f"adapter lbl warns (uid {call['uid']}): old image" in log
    assert re.search(rf"POST /v1\.\d+/containers/create\?name={name} -> 201 .* uid={call['uid']} hooks=pre:lbl=ok", log)


def test_warnings_reach_the_client_as_warning_headers_escaped_on_any_endpoint(make_gateway, fresh):
    """Kubernetes admission's way: each warning a Warning header of the response, on a list as on a denial; an
    adapter's CR/LF cannot start a header of its own."""
    sneaky = 'pinned "never"\r\nX-Injected: 1'
    gw = make_gateway(json.dumps({
        "endpoints": {"GET /*/containers/json": {"pre": ["careful"]}, "GET /*/info": {"pre": ["no"]}},
        "adapters": {"careful": v2(fresh.url("v2-allow", warn=sneaky)),
                     "no": v2(fresh.url("v2-deny", code=409, message="not today", warn="quota nearly used"))}}))
    api = docker.APIClient(base_url=gw.url, version="1.41")
    listed = api.get(api._url("/containers/json"))
    assert listed.status_code == 200 and "X-Injected" not in listed.headers
    assert listed.raw.headers.getlist("Warning") == [
        '299 powerstrip "adapter careful: pinned \\"never\\"\\\\x0d\\\\x0aX-Injected: 1"']
    refused = api.get(api._url("/info"))
    assert refused.status_code == 409 and refused.json() == {"message": "adapter no: not today"}
    assert refused.raw.headers.getlist("Warning") == ['299 powerstrip "adapter no: quota nearly used"']


def test_a_denial_reaches_the_client_with_its_status(make_gateway, fresh):
    gw = make_gateway(config(["no"], {"no": v2(fresh.url("v2-deny", code=409, message="quota exceeded"))}))
    refused = run_docker(gw.url, "create", "ps-busybox", "true")
    assert refused.rc != 0 and "adapter no: quota exceeded" in refused.err
    reply = rawhttp.request(gw.socket_path, "POST", "/containers/create", b'{"Image": "ps-busybox"}',
                            {"Content-Type": "application/json"})
    assert (reply.status, json.loads(reply.body)) == (409, {"message": "adapter no: quota exceeded"})


@pytest.mark.parametrize(("behaviour", "status", "problem"), [
    ("slow", 504, "no answer from .* within 0.3s"),
    ("v2-wrong-uid", 502, "uid 'not-the-uid' is not the call's"),
    ("v2-bad-patch", 502, "the patch does not apply"),
    ("status", 502, "answered HTTP 403"),  # in v2 a verdict is in the document: a 4xx is a failure
])
@pytest.mark.parametrize("policy", ["fail", "ignore"])
def test_failures_follow_the_failure_policy(make_gateway, fresh, created, uniq, behaviour, status, problem, policy):
    url = fresh.url(behaviour, seconds=3, code=403) if behaviour in ("slow", "status") else fresh.url(behaviour)
    gw = make_gateway(config(["bad"], {"bad": v2(url, timeout=0.3, failure_policy=policy)}))
    name = f"v2f-{uniq}"
    reply = rawhttp.request(gw.socket_path, "POST", f"/containers/create?name={name}", b'{"Image": "ps-busybox"}',
                            {"Content-Type": "application/json"})
    if policy == "fail":
        assert reply.status == status, reply.body
        assert re.search(problem, json.loads(reply.body)["message"])
    else:
        assert reply.status == 201, reply.body
        assert created(name).labels == {}
        wait_for_log(gw, "hooks=pre:bad=ignored")


def test_validating_adapters_see_the_final_request(make_gateway, fresh, created, uniq):
    gw = make_gateway(config(["check", "lbl"], {
        "check": v2(fresh.url("v2-allow"), kind="validating"),
        "lbl": v2(fresh.url("v2-label", key="owner", value="alice")),
    }))
    name = f"v2k-{uniq}"
    assert run_docker(gw.url, "create", "--name", name, "ps-busybox", "true").rc == 0
    assert fresh.calls_to("v2-allow")[0]["request"]["object"]["Labels"] == {"owner": "alice"}
    assert created(name).labels == {"owner": "alice"}
    wait_for_log(gw, "hooks=pre:lbl=ok")
    assert ",pre:check=ok" in gw.log_text()


def test_a_dry_run_reaches_v2_adapters_and_skips_v1_ones(make_gateway, fresh, dockerd):
    gw = make_gateway(config(["v1", "lbl"], {"v1": fresh.url("pass"),
                                             "lbl": v2(fresh.url("v2-label", key="a", value="b"))}))
    reply = rawhttp.request(gw.socket_path, "POST", "/containers/create", b'{"Image": "ps-busybox", "Labels": {}}',
                            {"Content-Type": "application/json", "X-Powerstrip-Dry-Run": "yes"})
    answer = json.loads(reply.body)
    assert reply.status == 200 and json.loads(answer["Request"]["Body"])["Labels"] == {"a": "b"}
    assert [(hook["Adapter"], hook["Outcome"]) for hook in answer["Hooks"]] == [("v1", "skipped"), ("lbl", "ok")]
    assert fresh.calls_to("pass") == [] and fresh.calls_to("v2-label")[0]["dryRun"] is True
