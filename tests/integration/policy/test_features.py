"""Modes, rate limits, ownership, label injection, redaction, hot reload and unbroken streams, through the
real daemon with the docker CLI."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from harness import rawhttp
from harness.cli import Streaming, run_docker
from harness.gateway import free_tcp_port
from harness.util import wait_until

pytestmark = pytest.mark.docker


def _audit_lines(gw) -> list[dict]:
    return [json.loads(line.split("powerstrip.policy.audit: ", 1)[1]) for line in gw.log_text().splitlines()
            if "powerstrip.policy.audit: " in line]


def test_warn_and_audit_modes(policy_gateway, uniq, daemon):
    gw = policy_gateway("""\
        profiles:
          - name: trial
            mode: warn
            rules:
              - allow: "* /**"
              - deny: "DELETE /containers/*"
                mode: audit
        """)
    name = f"pol-warn-{uniq}"
    try:
        created = run_docker(gw.url, "create", "--privileged", "--name", name, "ps-busybox", "true")
        assert created.rc == 0, created.err
        assert "powerstrip policy (warn mode, not enforced)" in created.err and "privileged" in created.err
        assert daemon.api.inspect_container(name)["HostConfig"]["Privileged"] is True
        wait_until(lambda: any(e["path"] == "/containers/create" for e in _audit_lines(gw)), 10, 0.05, "the audit line")
        entry = next(e for e in _audit_lines(gw) if e["path"] == "/containers/create")
        assert entry["decision"] == "deny" and entry["mode"] == "warn" and not entry["enforced"]
        assert entry["rule"].endswith("policy.yml:5") and entry["violations"] == ["privileged containers are not allowed"]
    finally:
        daemon.api.remove_container(name, force=True)


def test_per_rule_audit_mode_records_and_lets_through(policy_gateway, uniq, daemon):
    gw = policy_gateway("""\
        profiles:
          - name: ops
            rules:
              - deny: "DELETE /containers/*"
                reason: deletes are being reviewed
                mode: audit
              - allow: "* /**"
        """)
    name = f"pol-audit-{uniq}"
    daemon.api.create_container("ps-busybox", ["true"], name=name)
    assert run_docker(gw.url, "rm", name).rc == 0
    wait_until(lambda: any(e["path"] == f"/containers/{name}" for e in _audit_lines(gw)), 10, 0.05, "the audit line")
    entry = next(e for e in _audit_lines(gw) if e["path"] == f"/containers/{name}")
    assert entry == {**entry, "decision": "deny", "mode": "audit", "enforced": False,
                     "reason": "deletes are being reviewed", "profile": "ops"}
    assert entry["rule"].endswith("policy.yml:4")


def test_rate_limit_answers_429(policy_gateway):
    gw = policy_gateway("""\
        profiles:
          - name: slow
            rate_limit: {rate: 0.5, burst: 3}
            rules:
              - allow: "* /**"
        """)
    statuses = [rawhttp.request(gw.socket_path, "GET", "/v1.41/containers/json").status for _ in range(5)]
    assert statuses[:2] == [200, 200] and statuses[-1] == 429, statuses  # the harness's ready ping took one token
    reply = rawhttp.request(gw.socket_path, "GET", "/v1.41/containers/json")
    assert reply.status == 429 and "over its rate limit (0.5/s, burst 3)" in reply.json()["message"]


def test_ownership_labels_lists_access_and_prunes(policy_gateway, uniq, daemon):
    port = free_tcp_port()
    gw = policy_gateway(f"""\
        profiles:
          - name: team-a
            match: {{listener: "unix://./gw.sock"}}
            owner: team-a
            labels: {{tier: frontend}}
            rules: [{{allow: "* /**"}}]
            powers: {{volumes_from: true, join_containers: true}}
          - name: team-b
            match: {{listener: "tcp://127.0.0.1:{port}"}}
            owner: team-b
            rules: [{{allow: "* /**"}}]
        """, extra_args=["--listen", f"tcp://127.0.0.1:{port}"])
    a, b = gw.url, f"tcp://127.0.0.1:{port}"
    mine, theirs = f"pol-own-a-{uniq}", f"pol-own-b-{uniq}"
    try:
        # a client cannot claim another owner: the profile's owner label wins
        assert run_docker(a, "create", "--label", "powerstrip.owner=team-b", "--name", mine, "ps-busybox", "true").rc == 0
        assert run_docker(b, "create", "--name", theirs, "ps-busybox", "true").rc == 0
        labels = daemon.api.inspect_container(mine)["Config"]["Labels"]
        assert labels["powerstrip.owner"] == "team-a" and labels["tier"] == "frontend"
        assert run_docker(a, "ps", "-a", "--format", "{{.Names}}").out.split() == [mine]
        assert run_docker(b, "ps", "-a", "--format", "{{.Names}}").out.split() == [theirs]
        assert run_docker(a, "ps", "-a", "--filter", "label=tier=frontend", "--format", "{{.Names}}").out.split() == [mine]
        for args in (("inspect", theirs), ("rm", "-f", theirs), ("start", theirs), ("logs", theirs)):
            refused = run_docker(a, *args)  # (rm -f exits 0 for a container that does not exist)
            assert "No such" in refused.err and (refused.rc != 0 or args[0] == "rm"), (args, refused.err)
        assert daemon.api.inspect_container(theirs)
        # nor can a create reach into another owner's container (its mounts, namespaces, links)
        for flags in (("--volumes-from", theirs), ("--network", f"container:{theirs}"), ("--pid", f"container:{theirs}"),
                      ("--link", f"{theirs}:x")):
            refused = run_docker(a, "create", *flags, "ps-busybox", "true")
            assert refused.rc != 0 and f"container '{theirs}' named in the request is not one of this profile's" \
                in refused.err, (flags, refused.err)
        assert run_docker(a, "create", "--volumes-from", mine, "--name", f"{mine}-2", "ps-busybox", "true").rc == 0
        pruned = run_docker(a, "container", "prune", "-f")
        assert pruned.rc == 0, pruned.err
        names = {c["Names"][0].lstrip("/") for c in daemon.api.containers(all=True)}
        assert mine not in names and theirs in names
        events = rawhttp.request(gw.socket_path, "GET", f"/v1.41/events?since=0&until={int(time.time()) + 1}")
        actors = {json.loads(line)["Actor"]["Attributes"].get("name") for line in events.body.splitlines() if line}
        assert mine in actors and theirs not in actors
    finally:
        for name in (mine, theirs, f"{mine}-2"):
            try:
                daemon.api.remove_container(name, force=True)
            except Exception:  # noqa: BLE001 - gone already
                pass


def test_ownership_of_networks_volumes_images_and_exec_instances(policy_gateway, uniq, daemon, tmp_path):
    port = free_tcp_port()
    gw = policy_gateway(f"""\
        profiles:
          - name: team-a
            match: {{listener: "unix://./gw.sock"}}
            owner: team-a
            rules: [{{allow: "* /**"}}]
          - name: team-b
            match: {{listener: "tcp://127.0.0.1:{port}"}}
            owner: team-b
            rules: [{{allow: "* /**"}}]
        """, extra_args=["--listen", f"tcp://127.0.0.1:{port}"])
    a, b = gw.url, f"tcp://127.0.0.1:{port}"
    net, vol, box = f"pol-own-net-{uniq}", f"pol-own-vol-{uniq}", f"pol-own-box-{uniq}"
    image = f"pol-own-image-{uniq}"
    try:
        assert run_docker(a, "network", "create", net).rc == 0
        assert run_docker(a, "volume", "create", vol).rc == 0
        assert run_docker(a, "run", "-d", "--name", box, "ps-busybox", "sleep", "60").rc == 0
        assert daemon.networks.get(net).attrs["Labels"]["powerstrip.owner"] == "team-a"
        for args, missing in ((("network", "inspect", net), "No such network"), (("network", "rm", net), "No such network"),
                              (("volume", "inspect", vol), "no such volume"), (("volume", "rm", vol), "no such volume"),
                              (("exec", box, "true"), "No such container")):
            refused = run_docker(b, *args)
            assert refused.rc != 0 and missing.lower() in refused.err.lower(), (args, refused.err)
        assert run_docker(b, "network", "ls", "-q", "--filter", f"name={net}").out.strip() == ""
        assert run_docker(a, "network", "ls", "--format", "{{.Name}}").out.split() == [net]
        # b may not attach to a's network, nor connect a's container to a network of its own
        joined = run_docker(b, "create", "--network", net, "ps-busybox", "true")
        assert joined.rc != 0 and f"network '{net}' named in the request is not one of this profile's" in joined.err
        assert run_docker(b, "network", "create", f"{net}-b").rc == 0
        connected = run_docker(b, "network", "connect", f"{net}-b", box)
        assert connected.rc != 0 and f"container '{box}' named in the request" in connected.err, connected.err
        assert run_docker(b, "network", "rm", f"{net}-b").rc == 0
        exec_id = rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/{box}/exec", b'{"Cmd": ["true"]}',
                                  {"Content-Type": "application/json"}).json()["Id"]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/v1.41/exec/{exec_id}/json")
        response = connection.getresponse()
        assert response.status == 404 and b"No such exec instance" in response.read()
        connection.close()
        assert run_docker(a, "exec", box, "echo", "mine").out == "mine\n"
        # an image a builds is stamped as a's: b may run from shared images but not remove a's
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text("FROM ps-busybox\nRUN true\n")
        assert run_docker(a, "build", "-t", image, str(context), timeout=120).rc == 0
        assert daemon.images.get(image).labels["powerstrip.owner"] == "team-a"
        removed = run_docker(b, "rmi", image)
        assert removed.rc != 0 and "no such image" in removed.err.lower(), removed.err
        assert run_docker(b, "run", "--rm", "ps-busybox", "true").rc == 0
        assert run_docker(a, "rmi", image).rc == 0
    finally:
        run_docker(a, "rmi", "-f", image)
        run_docker(a, "rm", "-f", box)
        run_docker(a, "network", "rm", net)
        run_docker(a, "volume", "rm", vol)


def test_env_injection_and_image_remap(policy_gateway, uniq, daemon):
    daemon.images.get("ps-busybox").tag("mirror.local/library/ps-busybox", "latest")
    gw = policy_gateway("""\
        profiles:
          - name: p
            env: {HTTP_PROXY: "http://proxy.internal:3128"}
            image_remap: {"docker.io/library/": "mirror.local/library/"}
            powers: {images: ["mirror.local/*"]}
            rules: [{allow: "* /**"}]
        """)
    name = f"pol-mut-{uniq}"
    try:
        ran = run_docker(gw.url, "run", "--name", name, "-e", "HTTP_PROXY=mine", "ps-busybox", "sh", "-c", "echo $HTTP_PROXY")
        assert ran.rc == 0 and ran.out == "http://proxy.internal:3128\n", ran.err
        assert daemon.api.inspect_container(name)["Config"]["Image"] == "mirror.local/library/ps-busybox:latest"
    finally:
        run_docker(gw.url, "rm", "-f", name)
        daemon.images.remove("mirror.local/library/ps-busybox:latest")


def test_redaction_of_env_and_mounts(policy_gateway, uniq, daemon, tmp_path):
    gw = policy_gateway("""\
        profiles:
          - name: dashboard
            redact: {env: true, mounts: true}
            rules: [{allow: "* /**"}]
        """)
    name = f"pol-redact-{uniq}"
    daemon.api.create_container("ps-busybox", ["true"], name=name, environment=["DB_PASSWORD=hunter2", "MODE=x"],
                                host_config=daemon.api.create_host_config(binds=[f"{tmp_path}:/data"]))
    try:
        shown = json.loads(run_docker(gw.url, "inspect", name).out)[0]
        assert "DB_PASSWORD=<redacted>" in shown["Config"]["Env"] and "hunter2" not in json.dumps(shown)
        assert str(tmp_path) not in json.dumps(shown)
        assert shown["Mounts"][0]["Destination"] == "/data"
    finally:
        daemon.api.remove_container(name, force=True)


def test_rules_file_reloads_and_a_bad_edit_keeps_the_old_rules(policy_gateway):
    gw = policy_gateway("""\
        profiles:
          - name: p
            rules: [{allow: "GET,HEAD /_ping"}]
        """)
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/info").status == 403
    gw.rules_path.write_text("profiles:\n  - name: p\n    rules: [{allow: 'GET,HEAD /_ping'}, {allow: GET /info}]\n")
    wait_until(lambda: rawhttp.request(gw.socket_path, "GET", "/v1.41/info").status == 200, 10, 0.2, "the reload")
    gw.rules_path.write_text("profiles:\n  - name: p\n    rules: [{allow: get /info}]\n")
    # the file is looked at when a request comes (at most once a second)
    wait_until(lambda: rawhttp.request(gw.socket_path, "GET", "/_ping") and "policy reload refused" in gw.log_text(),
               10, 0.2, "the refused reload")
    assert "policy.yml:3:" in gw.log_text()
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/info").status == 200


def test_streams_and_upgrades_pass_through_the_policy(policy_gateway, uniq, daemon):
    gw = policy_gateway("""\
        profiles:
          - name: ci
            presets: [ci-runner]
        """)
    name = f"pol-stream-{uniq}"
    daemon.api.create_container("ps-busybox", ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.5; done"],
                                name=name)
    daemon.api.start(name)
    try:
        with Streaming(gw.url, "logs", "-f", name) as follow:
            lines = follow.wait_lines(7, 15)  # 3.5 s of an open stream
        assert lines[:7] == [str(i) for i in range(7)]
        executed = run_docker(gw.url, "exec", name, "echo", "through-the-policy")
        assert executed.rc == 0 and executed.out == "through-the-policy\n", executed.err
        attached = run_docker(gw.url, "run", "--rm", "-i", "ps-busybox", "cat", input="stdin-through\n")
        assert attached.out == "stdin-through\n", attached.err
    finally:
        daemon.api.remove_container(name, force=True)


def test_path_only_decisions_take_the_fast_path(policy_gateway):
    """Allowed by path: relayed without a hook call (no hooks in the access line); denied by path: refused
    before the hook chain, the same message; a dry run still never reaches the daemon."""
    gw = policy_gateway("""\
        profiles:
          - name: p
            rules:
              - deny: GET /info
                reason: not for you
              - allow: ["GET,HEAD /_ping", "POST /containers/create"]
        """)
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/_ping").status == 200
    denied = rawhttp.request(gw.socket_path, "GET", "/v1.41/info")
    assert denied.status == 403 and denied.json()["message"] == "adapter policy: policy (profile 'p'): not for you"
    created = rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", b'{"Image": "pol-missing"}',
                              {"Content-Type": "application/json"})
    assert created.status == 404
    dry = rawhttp.request(gw.socket_path, "GET", "/v1.41/_ping", headers={"X-Powerstrip-Dry-Run": "1"})
    assert dry.status == 200 and dry.json()["DryRun"] is True
    wait_until(lambda: "POST /v1.41/containers/create -> 404" in gw.log_text(), 10, 0.05, "the access lines")
    lines = gw.log_text().splitlines()
    ping = next(line for line in lines if "GET /v1.41/_ping -> 200" in line)
    info = next(line for line in lines if "GET /v1.41/info -> 403" in line)
    create = next(line for line in lines if "POST /v1.41/containers/create -> 404" in line)
    assert "hooks=" not in ping and "hooks=" not in info and "hooks=pre:policy=ok" in create


def test_every_decision_in_the_audit_log_with_its_rule(policy_gateway, tmp_path):
    audit_log = tmp_path / "audit.jsonl"
    gw = policy_gateway("""\
        profiles:
          - name: p
            rules:
              - deny: GET /info
              - allow: ["GET,HEAD /_ping", "POST /containers/create"]
        """, extra_args=["--audit-log", str(audit_log)])
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/_ping").status == 200
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/info").status == 403
    assert rawhttp.request(gw.socket_path, "POST", "/v1.41/containers/create", b'{"Image": "pol-missing"}',
                           {"Content-Type": "application/json"}).status == 404
    assert rawhttp.request(gw.socket_path, "GET", "/v1.41/version").status == 403

    def decisions() -> list[dict]:
        lines = [json.loads(line) for line in audit_log.read_text().splitlines()] if audit_log.exists() else []
        return [entry for entry in lines if entry.get("event") == "policy"]

    wait_until(lambda: any(e["path"] == "/version" for e in decisions()), 10, 0.05, "the policy's audit lines")
    found = {(e["method"], e["path"]): e for e in decisions()}
    assert found[("GET", "/_ping")]["decision"] == "allow" and found[("GET", "/_ping")]["rule"].endswith("policy.yml:5")
    assert found[("GET", "/info")]["decision"] == "deny" and found[("GET", "/info")]["rule"].endswith("policy.yml:4")
    assert found[("POST", "/containers/create")]["uid"]  # the hooked one carries the exchange uid
    assert found[("GET", "/version")]["rule"] == "default deny"
