"""Per-profile concurrency caps and warn-mode Warning headers through a real gateway and the real daemon, with the
Docker SDK for Python (and raw HTTP over the unix socket where a client must hang up mid-stream)."""

from __future__ import annotations

import json
import threading
import time

import docker
import pytest

from harness import rawhttp
from harness.gateway import free_tcp_port
from harness.ops import http_get, metric, replace_file, wait_for_log
from harness.util import wait_until

from .conftest import CONFIG

pytestmark = pytest.mark.docker

CAP_MESSAGE = "adapter policy: policy: profile 'ci' is at its concurrency cap ({} request(s) at a time{}); " \
              "try again when one of them ends"


def capped_gateway(policy_gateway, rules: str, **kwargs):
    """A gateway with ``rules`` and a metrics listener (``gw.metrics``), whose in-progress gauge tells the test
    when its slow requests hold their slots, so no probe of its own can take a slot first."""
    port = free_tcp_port()
    gw = policy_gateway(rules, extra_args=["--metrics-listen", f"tcp://127.0.0.1:{port}"], **kwargs)
    gw.metrics = f"http://127.0.0.1:{port}/metrics"
    return gw


def holding(gw, count: int) -> None:
    """Wait until ``count`` of profile ci's requests hold a slot."""
    def held() -> bool:
        text = http_get(gw.metrics)[1].decode()
        return metric(text, "powerstrip_policy_requests_in_progress", profile="ci") == count
    wait_until(held, 10, 0.05, f"{count} slot(s) held")


def sdk(gw) -> docker.APIClient:
    """A Docker SDK client of its own (one per thread: its session is not shared); no version ping."""
    return docker.APIClient(base_url=gw.url, version="1.41", timeout=60)


def list_status(api: docker.APIClient) -> tuple[int, str]:
    """``GET /containers/json`` through the SDK: 200, or the error's status and message."""
    try:
        api.containers()
    except docker.errors.APIError as exc:
        return exc.status_code, exc.explanation
    return 200, ""


def running(daemon, uniq: str, count: int) -> list[str]:
    """Containers running ``sleep 60`` as PID 1 (which ignores SIGTERM: ``stop -t N`` takes N seconds), after a
    first line of output (so a ``logs -f`` has something to say)."""
    names = []
    for index in range(count):
        name = f"pol-cap-{uniq}-{index}"
        daemon.api.create_container("ps-busybox", ["sh", "-c", "echo up; exec sleep 60"], name=name)
        daemon.api.start(name)
        names.append(name)
    return names


def remove(daemon, names: list[str]) -> None:
    for name in names:
        try:
            daemon.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


class Stream:
    """A long-lived request held open over raw HTTP (``GET /events``): its head read, its body flowing."""

    def __init__(self, gw, target: str = "/v1.41/events") -> None:
        self.connection = rawhttp.UnixHTTPConnection(gw.socket_path, timeout=30)
        self.connection.request("GET", target)
        self.response = self.connection.getresponse()

    def hang_up(self) -> None:
        """The client leaves mid-stream: the socket closed, nothing said."""
        self.response.close()
        self.connection.close()


def streams_fit(gw, count: int) -> bool:
    """Whether ``count`` more long-lived streams get through now (each closed again)."""
    opened = [Stream(gw) for _ in range(count)]
    for stream in opened:
        stream.hang_up()
    return all(stream.response.status == 200 for stream in opened)


def in_thread(call) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_a_cap_refuses_the_request_past_it_with_429_and_long_lived_streams_do_not_count(policy_gateway, daemon, uniq):
    gw = capped_gateway(policy_gateway, """\
        profiles:
          - name: ci
            concurrency: 2
            rules: [{allow: "* /**"}]
        """)
    names = running(daemon, uniq, 3)
    api = sdk(gw)
    try:
        stoppers = [in_thread(lambda name=name: sdk(gw).stop(name, timeout=5)) for name in names[:2]]
        holding(gw, 2)
        # two slow API calls in progress: a third request is refused, at once, with the profile and the cap
        assert list_status(api) == (429, CAP_MESSAGE.format(2, ""))
        # long-lived streams are not counted: an events stream, a wait and logs -f still get through
        events = Stream(gw)
        waiter = in_thread(lambda: sdk(gw).wait(names[2]))
        follow = Stream(gw, f"/v1.41/containers/{names[2]}/logs?follow=1&stdout=1")
        assert (events.response.status, follow.response.status) == (200, 200)
        for thread in stoppers:
            thread.join(15)
        assert not any(thread.is_alive() for thread in stoppers)
        wait_until(lambda: list_status(api) == (200, ""), 5, 0.05, "both slots back when the stops ended")
        daemon.api.kill(names[2])
        waiter.join(15)
        for stream in (events, follow):
            stream.hang_up()
    finally:
        remove(daemon, names)


def test_with_streams_counted_a_client_that_hangs_up_mid_stream_gives_its_slot_back(policy_gateway, daemon, uniq):
    gw = capped_gateway(policy_gateway, """\
        profiles:
          - name: ci
            concurrency: {max: 2, streams: true}
            rules: [{allow: "* /**"}]
        """)
    names = running(daemon, uniq, 1)
    api = sdk(gw)
    try:
        waiter = in_thread(lambda: sdk(gw).wait(names[0]))  # docker wait: as long as the container runs
        holding(gw, 1)
        events = Stream(gw)
        assert events.response.status == 200
        full = CAP_MESSAGE.format(2, ", streams included")
        assert list_status(api) == (429, full)
        events.hang_up()
        wait_until(lambda: list_status(api) == (200, ""), 10, 0.1, "the hung-up stream's slot back")
        again = Stream(gw)  # the wait still holds the other slot
        assert again.response.status == 200 and list_status(api) == (429, full)
        daemon.api.kill(names[0])
        waiter.join(15)
        assert not waiter.is_alive()
        wait_until(lambda: list_status(api) == (200, ""), 10, 0.1, "the wait's slot back after its container ended")
        again.hang_up()
        wait_until(lambda: streams_fit(gw, 2), 10, 0.1, "both slots free: nothing leaked")
    finally:
        remove(daemon, names)


def test_a_slot_taken_before_a_config_reload_is_given_back_after_it(policy_gateway, daemon, uniq):
    gw = capped_gateway(policy_gateway, """\
        profiles:
          - name: ci
            concurrency: {max: 1, streams: true}
            rules: [{allow: "* /**"}]
        """)
    names = running(daemon, uniq, 1)
    api = sdk(gw)
    try:
        waiter = in_thread(lambda: sdk(gw).wait(names[0]))
        holding(gw, 1)
        full = CAP_MESSAGE.format(1, ", streams included")
        assert list_status(api) == (429, full)
        reloaded = {**CONFIG, "endpoints": {**CONFIG["endpoints"], "GET /*/version": {"post": ["policy"]}}}
        replace_file(gw.config, json.dumps(reloaded))
        wait_for_log(gw, "config reloaded (generation 2)")
        assert "1 kept" in gw.log_text()  # the same policy adapter, so the same count
        assert list_status(api) == (429, full)  # the slot of generation 1 still counts in generation 2
        daemon.api.kill(names[0])
        waiter.join(15)
        wait_until(lambda: list_status(api) == (200, ""), 10, 0.1, "the generation-1 slot back")
    finally:
        remove(daemon, names)


def test_a_daemon_that_is_down_leaves_no_slot_taken(policy_gateway, uniq):
    gw = policy_gateway("""\
        profiles:
          - name: ci
            concurrency: 1
            rules: [{allow: "* /**"}]
        """, docker_url=f"unix:///tmp/ps-no-daemon-{uniq}.sock", wait_ping=False)
    for _ in range(3):  # each one would find the slot of the one before if it leaked
        reply = rawhttp.request(gw.socket_path, "GET", "/v1.41/containers/json")
        assert reply.status == 502 and "cannot connect to the Docker daemon" in reply.json()["message"], reply.body


def test_warn_mode_warnings_reach_the_client_as_warning_headers_on_any_endpoint(policy_gateway, tmp_path):
    audit_log = tmp_path / "audit.jsonl"
    gw = policy_gateway("""\
        profiles:
          - name: trial
            mode: warn
            rules:
              - deny: GET /containers/json
                reason: listing is being reviewed
              - deny: GET /events
                reason: "events are \\"noisy\\""
              - allow: "* /**"
        """, extra_args=["--audit-log", str(audit_log)])
    api = sdk(gw)
    listed = api.get(api._url("/containers/json"))
    expected = "adapter policy: policy (profile 'trial'): listing is being reviewed (warn mode: not enforced)"
    assert listed.status_code == 200 and isinstance(listed.json(), list)  # relayed (the daemon is shared)
    assert listed.raw.headers.getlist("Warning") == [f'299 powerstrip "{expected}"']
    # a stream: the header is in its head, no post-hook and no body collection needed; the stream flows on
    events = Stream(gw, f"/v1.41/events?since={int(time.time()) - 3600}")
    assert events.response.status == 200
    assert events.response.headers.get_all("Warning") == [
        '299 powerstrip "adapter policy: policy (profile \'trial\'): events are \\"noisy\\" (warn mode: not enforced)"']
    events.hang_up()
    assert "Warning" not in api.get(api._url("/version")).headers  # allowed: nothing to warn about

    def listing_entry() -> dict | None:
        lines = [json.loads(line) for line in audit_log.read_text().splitlines()] if audit_log.exists() else []
        return next((e for e in lines if e.get("path") == "/v1.41/containers/json" and "status" in e), None)

    wait_until(lambda: listing_entry() is not None, 10, 0.05, "the request's audit line")
    assert listing_entry()["warnings"] == [expected]
