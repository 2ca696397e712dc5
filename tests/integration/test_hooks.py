"""Hooks through a real gateway, real HTTP adapters and the real daemon (protocol v1)."""

from __future__ import annotations

import json
import time

import docker
import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.ops import wait_for_log

pytestmark = pytest.mark.docker

CREATE = "POST /*/containers/create"


def config(endpoints: dict[str, dict[str, list[str]]], adapters: dict[str, object]) -> str:
    return json.dumps({"version": 1, "endpoints": endpoints, "adapters": adapters})  # JSON is YAML


def test_chain_runs_in_order_and_the_last_hook_sees_exactly_what_the_daemon_gets(make_gateway, fresh, dockerd, uniq, cleanup):
    gw = make_gateway(config(
        {CREATE: {"pre": ["first", "second", "record"]}},
        {"first": fresh.url("env", value="A=1"), "second": fresh.url("env", value="B=2"), "record": fresh.url("pass")},
    ))
    name = f"hk-{uniq}"
    cleanup.append(name)
    result = run_docker(gw.url, "create", "--name", name, "-e", "Z=0", "ps-busybox", "true")
    assert result.rc == 0, result.err
    env = docker.DockerClient(base_url=dockerd.url).containers.get(name).attrs["Config"]["Env"]
    assert env[:3] == ["Z=0", "A=1", "B=2"]
    seen = json.loads(fresh.calls_to("pass")[0]["ClientRequest"]["Body"])
    assert seen["Env"] == ["Z=0", "A=1", "B=2"]
    wait_for_log(gw, "hooks=pre:first=ok")  # the access line follows the response


def test_unversioned_path_and_any_content_type_are_hooked(make_gateway, fresh, dockerd, uniq, cleanup):
    gw = make_gateway(config({CREATE: {"pre": ["label"]}}, {"label": fresh.url("label", key="seen", value="yes")}))
    name = f"hk-{uniq}"
    cleanup.append(name)
    reply = rawhttp.request(gw.socket_path, "POST", f"/containers/create?name={name}",
                            json.dumps({"Image": "ps-busybox", "Cmd": ["true"]}).encode(),
                            {"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 201, reply.body
    labels = docker.DockerClient(base_url=dockerd.url).containers.get(name).labels
    assert labels == {"seen": "yes"}


def test_chunked_request_body_is_deframed_for_the_hook_and_forwarded_with_a_length(make_gateway, fresh, dockerd, uniq, cleanup):
    gw = make_gateway(config({CREATE: {"pre": ["label"]}}, {"label": fresh.url("label", key="k", value="v")}))
    name = f"hk-{uniq}"
    cleanup.append(name)
    body = json.dumps({"Image": "ps-busybox", "Cmd": ["true"], "Labels": {"a": "b"}}).encode()
    reply = rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/create?name={name}", body,
                            {"Content-Type": "application/json"}, chunked=True)
    assert reply.status == 201, reply.body
    # the hook gets the whole body, in its canonical form (what the daemon is sent)
    assert json.loads(fresh.calls_to("label")[0]["ClientRequest"]["Body"]) == json.loads(body)
    assert docker.DockerClient(base_url=dockerd.url).containers.get(name).labels == {"a": "b", "k": "v"}


def test_pre_hook_rewrites_path_and_query(make_gateway, fresh, dockerd, uniq, cleanup):
    forced = f"hk-forced-{uniq}"
    cleanup.append(forced)
    gw = make_gateway(config({CREATE: {"pre": ["rename"]}},
                             {"rename": fresh.url("target", Request=f"/v1.41/containers/create?name={forced}")}))
    result = run_docker(gw.url, "create", "--name", f"hk-asked-{uniq}", "ps-busybox", "true")
    assert result.rc == 0, result.err
    assert docker.DockerClient(base_url=dockerd.url).containers.get(forced).name == forced


def test_pre_hook_rewrites_method_and_post_hook_sees_the_forwarded_request(make_gateway, fresh):
    gw = make_gateway(config(
        {"POST /*/whoami": {"pre": ["to-version", "null"], "post": ["record"]}},
        {"to-version": fresh.url("target", Method="GET", Request="/v1.41/version"),
         "null": fresh.url("null-body"), "record": fresh.url("pass")},
    ))
    reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/whoami", b'{"x": 1}', {"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    assert reply.json()["ApiVersion"]
    post = fresh.calls_to("pass")[0]
    assert post["ClientRequest"] == {"Method": "GET", "Request": "/v1.41/version", "Body": None}
    assert post["ServerResponse"]["Code"] == 200
    assert post["ServerResponse"]["ContentType"] == "application/json"
    assert json.loads(post["ServerResponse"]["Body"]) == reply.json()


def test_post_hook_changes_code_content_type_and_body(make_gateway, fresh):
    gw = make_gateway(config({"GET /*/version": {"post": ["swap"]}},
                             {"swap": fresh.url("respond", code=299, type="text/plain", body="replaced")}))
    reply = rawhttp.request(gw.socket_path, "GET", "/v1.41/version")
    assert (reply.status, reply.headers["content-type"], reply.body) == (299, "text/plain", b"replaced")
    assert reply.headers["content-length"] == "8"


def test_adapter_refusal_reaches_the_docker_cli_with_its_status(make_gateway, fresh, uniq):
    gw = make_gateway(config({CREATE: {"pre": ["policy"]}},
                             {"policy": fresh.url("status", code=403, message="privileged containers are not allowed")}))
    result = run_docker(gw.url, "create", "--name", f"hk-{uniq}", "ps-busybox", "true")
    assert result.rc != 0
    assert "adapter policy: privileged containers are not allowed" in result.err
    reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", b"{}", {"Content-Type": "application/json"})
    assert reply.status == 403


FAILURES = [
    ("slow", {"seconds": 3}, 504, "within 1s"),
    ("status", {"code": 500, "message": "boom"}, 502, "HTTP 500: boom"),
    ("garbage", {}, 502, "not JSON"),
    ("missing", {}, 502, "no ModifiedClientRequest"),
]


@pytest.mark.parametrize(("behaviour", "params", "status", "text"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failing_adapter_fails_closed_with_a_clear_error_and_the_gateway_goes_on(
        make_gateway, fresh, behaviour, params, status, text, uniq):
    gw = make_gateway(config({CREATE: {"pre": ["bad"]}},
                             {"bad": {"url": fresh.url(behaviour, **params), "timeout": 1}}))
    started = time.monotonic()
    reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", b'{"Image": "ps-busybox"}',
                            {"Content-Type": "application/json"})
    assert time.monotonic() - started < 2.5
    assert reply.status == status
    message = reply.json()["message"]
    assert message.startswith("adapter bad: ") and text in message
    result = run_docker(gw.url, "create", "--name", f"hk-{uniq}", "ps-busybox", "true")
    assert result.rc == 1 and "Error response from daemon: adapter bad:" in result.err
    assert rawhttp.request(gw.socket_path, "GET", "/_ping").body == b"OK"


def test_unreachable_adapter_fails_closed(make_gateway):
    gw = make_gateway(config({CREATE: {"pre": ["gone"]}}, {"gone": "http://127.0.0.1:9/hook"}))
    reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", b"{}")
    assert reply.status == 502
    assert "adapter gone: cannot reach http://127.0.0.1:9/hook" in reply.json()["message"]


def test_failure_policy_ignore_goes_on_without_the_adapter(make_gateway, fresh, dockerd, uniq, cleanup):
    gw = make_gateway(config({CREATE: {"pre": ["flaky", "label"]}},
                             {"flaky": {"url": fresh.url("status", code=500), "failure_policy": "ignore"},
                              "label": fresh.url("label", key="after", value="flaky")}))
    name = f"hk-{uniq}"
    cleanup.append(name)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc == 0, result.err
    assert docker.DockerClient(base_url=dockerd.url).containers.get(name).labels == {"after": "flaky"}
    wait_for_log(gw, "failure_policy ignore")  # log lines go out in batches


def test_body_over_the_limit_is_refused_not_skipped(make_gateway, fresh):
    gw = make_gateway(config({CREATE: {"pre": ["record"]}}, {"record": fresh.url("pass")}),
                      extra_args=["--max-body-size", "1KiB"])
    body = json.dumps({"Image": "ps-busybox", "Env": ["X=" + "y" * 2000]}).encode()
    for chunked in (False, True):
        reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", body,
                                {"Content-Type": "application/json"}, chunked=chunked)
        assert reply.status == 413
        assert "limit of 1024 bytes" in reply.json()["message"]
    assert fresh.calls_to("pass") == []


def test_post_hooks_on_an_endless_stream_let_it_flow(make_gateway, fresh, dockerd):
    gw = make_gateway(config({"GET /*/events": {"post": ["record"]}}, {"record": fresh.url("pass")}),
                      extra_args=["--stream-grace", "0.5"])
    assert "has post-hooks and matches streaming endpoints (GET /v1.41/events)" in gw.log_text()
    client = docker.DockerClient(base_url=gw.url)
    events = client.events(decode=True)
    try:
        docker.DockerClient(base_url=dockerd.url).volumes.create(f"ev-{time.time_ns()}").remove()
        event = next(events)
        assert event["Type"] == "volume"
    finally:
        events.close()
        client.close()
    assert fresh.calls_to("pass") == []
    wait_for_log(gw, "post-hooks not run for GET /v1.41/events")
