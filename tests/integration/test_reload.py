"""Hot reload through a real gateway, real HTTP adapters, the real daemon and real docker clients."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import docker
import pytest

from harness import rawhttp
from harness.adapter_server import AdapterServer
from harness.cli import run_docker
from harness.ops import CREATE, config, count_in_log, reload_by_sighup, replace_file, wait_for_log

pytestmark = pytest.mark.docker

PASSTHROUGH = config({}, {})


def deny_create(server: AdapterServer, message: str = "no containers today") -> str:
    return config({CREATE: {"pre": ["deny"]}}, {"deny": server.url("status", code=403, message=message)})


def create_body() -> bytes:
    return json.dumps({"Image": "ps-busybox", "Cmd": ["true"]}).encode()


def test_sighup_switches_a_rejecting_adapter_on_and_off_also_on_a_kept_alive_connection(
        make_gateway, fresh, uniq, cleanup):
    gw = make_gateway(deny_create(fresh), extra_args=["--no-watch-config"])
    connection = rawhttp.UnixHTTPConnection(gw.socket_path, timeout=30)
    try:
        def create(name: str) -> tuple[int, bytes]:
            cleanup.append(name)
            connection.request("POST", f"/containers/create?name={name}", body=create_body(),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read()

        status, body = create(f"rl-{uniq}-1")
        assert (status, json.loads(body)) == (403, {"message": "adapter deny: no containers today"})
        sock = connection.sock

        reload_by_sighup(gw, gw.config, PASSTHROUGH, generation=2)
        status, body = create(f"rl-{uniq}-2")
        assert status == 201, body
        assert connection.sock is sock, "the kept-alive connection was replaced"

        reload_by_sighup(gw, gw.config, deny_create(fresh, "closed again"), generation=3)
        status, body = create(f"rl-{uniq}-3")
        assert (status, json.loads(body)) == (403, {"message": "adapter deny: closed again"})
        assert connection.sock is sock
    finally:
        connection.close()
    assert "0 endpoint pattern(s) (was 1), 0 adapter(s)" in gw.log_text()


def test_a_config_file_replaced_by_rename_is_reloaded_without_a_signal(make_gateway, fresh, uniq, cleanup):
    gw = make_gateway(PASSTHROUGH)
    name = f"rl-{uniq}"
    cleanup.append(name)
    replace_file(gw.config, deny_create(fresh))
    wait_for_log(gw, "config reloaded (generation 2)", timeout=10)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc != 0 and "adapter deny: no containers today" in result.err

    replace_file(gw.config, PASSTHROUGH)
    wait_for_log(gw, "config reloaded (generation 3)", timeout=10)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc == 0, result.err


def test_an_invalid_config_is_refused_with_one_clear_line_and_the_old_one_stays(make_gateway, fresh, uniq, cleanup):
    gw = make_gateway(deny_create(fresh))
    replace_file(gw.config, config({CREATE: {"pre": ["nobody"]}}, {}))
    wait_for_log(gw, "config reload refused", timeout=10)
    refused = [line for line in gw.log_text().splitlines() if "config reload refused" in line]
    assert len(refused) == 1
    assert "generation 1 stays in service" in refused[0] and "undefined adapter 'nobody'" in refused[0]
    # refused also by SIGHUP, and not reloaded again and again by the file watch
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, "config reload refused", count=2)
    time.sleep(2.5)
    assert count_in_log(gw, "config reload refused") == 2

    name = f"rl-{uniq}"
    cleanup.append(name)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc != 0 and "adapter deny: no containers today" in result.err
    assert gw.running()


def test_a_request_in_flight_finishes_with_the_config_it_started_with(make_gateway, fresh, uniq, cleanup):
    gw = make_gateway(config({CREATE: {"pre": ["slow"]}}, {"slow": fresh.url("slow", seconds=3)}),
                      extra_args=["--no-watch-config"])
    slow_name, later_name = f"rl-{uniq}-slow", f"rl-{uniq}-later"
    cleanup += [slow_name, later_name]
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault(
        "slow", run_docker(gw.url, "create", "--name", slow_name, "ps-busybox", "true")))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while not fresh.calls_to("slow") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fresh.calls_to("slow"), "the slow adapter was never called"
        reload_by_sighup(gw, gw.config, deny_create(fresh), generation=2)
        assert worker.is_alive(), "the slow request ended before the reload: the test proves nothing"
    finally:
        worker.join(30)
    assert results["slow"].rc == 0, results["slow"].err
    assert fresh.calls_to("status") == []  # the new chain never saw the old request
    result = run_docker(gw.url, "create", "--name", later_name, "ps-busybox", "true")
    assert result.rc != 0 and "adapter deny: no containers today" in result.err
    assert len(fresh.calls_to("slow")) == 1 and len(fresh.calls_to("status")) == 1


def test_reload_under_load_fails_no_request(make_gateway, fresh):
    pre = config({"GET /*/containers/json": {"pre": ["p"]}}, {"p": fresh.url("pass", v=1)})
    post = config({"GET /*/containers/json": {"post": ["q"]}, "GET /*/version": {"pre": ["p"]}},
                  {"p": fresh.url("pass", v=1), "q": fresh.url("pass", v=2)})
    variants = [post, PASSTHROUGH, pre]
    gw = make_gateway(pre)
    stop = threading.Event()
    done: list[int] = []
    failures: list[str] = []

    def hammer() -> None:
        client = docker.DockerClient(base_url=gw.url, timeout=30)
        count = 0
        try:
            while not stop.is_set():
                try:
                    client.containers.list(all=True)
                    client.ping()
                    client.version()
                    count += 3
                except Exception as exc:  # every failure is a finding
                    failures.append(repr(exc))
        finally:
            client.close()
            done.append(count)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for step in range(6):
            replace_file(gw.config, variants[step % 3])  # the file watch picks it up ...
            if step % 2 == 0:
                gw.proc.send_signal(signal.SIGHUP)  # ... unless SIGHUP is first (then both may reload)
            wait_for_log(gw, "config reloaded (generation", count=step + 1, timeout=10)
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    print(f"reload under load: {sum(done)} requests from {len(threads)} clients, "
          f"{count_in_log(gw, 'config reloaded (generation')} reloads, {len(failures)} failed")
    assert failures == []
    assert sum(done) > 100, f"too little load to prove anything: {done}"
    kinds = {document["Type"] for document in fresh.calls_to("pass")}
    assert kinds == {"pre-hook", "post-hook"}, "not every config was in service under load"
    assert count_in_log(gw, "config reload refused") == 0


def test_the_builtin_net_adapter_is_carried_over_when_its_settings_are_unchanged(make_gateway, fresh, uniq, cleanup):
    before = config({CREATE: {"pre": ["net"]}}, {"net": "builtin:net"})
    after = config({CREATE: {"pre": ["net", "tag"]}},
                   {"tag": fresh.url("label", key="reloaded", value="yes"), "net": "builtin:net"})
    gw = make_gateway(before, extra_args=["--no-watch-config"])
    reload_by_sighup(gw, gw.config, after, generation=2)
    assert "1 endpoint pattern(s) (was 1), 2 adapter(s): 1 new, 1 kept, 0 closed or replaced" in gw.log_text()
    name = f"rl-{uniq}"
    cleanup.append(name)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc == 0, result.err
    assert len(fresh.calls_to("label")) == 1


def test_a_config_whose_python_adapter_cannot_be_imported_is_refused(make_gateway, fresh, uniq, cleanup):
    gw = make_gateway(deny_create(fresh), extra_args=["--no-watch-config"])
    Path(gw.config).write_text(config({CREATE: {"pre": ["py"]}}, {"py": "python:no_such_module_here:adapter"}))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, "config reload refused")
    refused = next(line for line in gw.log_text().splitlines() if "config reload refused" in line)
    assert "generation 1 stays in service" in refused and "no_such_module_here" in refused
    name = f"rl-{uniq}"
    cleanup.append(name)
    result = run_docker(gw.url, "create", "--name", name, "ps-busybox", "true")
    assert result.rc != 0 and "adapter deny: no containers today" in result.err
