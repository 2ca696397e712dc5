"""``powerstrip.sdk.testing`` and ``powerstrip adapter try`` against real HTTP adapters: the tutorial adapter served
by ``powerstrip adapter run`` (protocols v1 and v2), judged the same as in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from examples.owner_policy import adapter as owner_policy
from harness.adapter_service import AdapterService
from harness.gateway import REPO_ROOT
from powerstrip.sdk.testing import Peer, post, pre

CREATE = "POST /v1.41/containers/create"
PRIVILEGED = {"Image": "busybox", "HostConfig": {"Privileged": True}}


@pytest.fixture(scope="module")
def service():
    with AdapterService("examples.owner_policy:adapter") as running:
        yield running


@pytest.mark.parametrize("protocol", [1, 2])
def test_an_http_adapter_is_judged_as_the_in_process_one(service: AdapterService, protocol: int) -> None:
    over_http = pre(service.url, CREATE, json=PRIVILEGED, protocol=protocol, name="policy")
    in_process = pre(owner_policy, CREATE, json=PRIVILEGED, name="policy")
    assert (over_http.status, over_http.message) == (in_process.status, in_process.message) == \
        (403, "adapter policy: privileged containers are not allowed here")
    allowed = pre(service.url, CREATE, json={"Image": "busybox"}, peer=Peer(uid=0), protocol=protocol)
    # protocol v1 does not carry the client: the adapter sees no uid; v2 does
    assert allowed.json["Labels"] == {"owner": "unknown" if protocol == 1 else "root"}


def test_an_http_adapter_that_cannot_be_reached_fails_by_its_policy() -> None:
    port = AdapterService("examples.owner_policy:adapter").port  # nothing listens there
    failed = pre(f"http://127.0.0.1:{port}/", CREATE, json={"Image": "busybox"}, timeout=2)
    assert (failed.status, failed.outcome) == (502, "failed") and "cannot reach" in failed.message
    ignored = pre(f"http://127.0.0.1:{port}/", CREATE, json={"Image": "busybox"}, failure_policy="ignore")
    assert (ignored.allowed, ignored.outcome) == (True, "ignored")
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        pre("ftp://127.0.0.1/", CREATE)


def test_post_hooks_over_http(service: AdapterService) -> None:
    answer = post(service.url, "GET /v1.41/containers/json", json=[], protocol=2)
    assert (answer.allowed, answer.status, answer.json) == (True, 200, [])


def _try(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "powerstrip", "adapter", "try", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def test_adapter_try_prints_the_verdict_and_exits_1_when_refused(service: AdapterService) -> None:
    body = json.dumps(PRIVILEGED)
    for target in ("examples.owner_policy:adapter", service.url):
        refused = _try(target, "POST", "/v1.41/containers/create", "--body-json", body, "--as", "uid=1000",
                       "--protocol", "2", "--name", "policy")
        assert refused.returncode == 1, refused.stderr
        verdict = json.loads(refused.stdout)
        assert (verdict["allowed"], verdict["status"], verdict["outcome"]) == (False, 403, "rejected")
        assert verdict["message"] == "adapter policy: privileged containers are not allowed here"
    allowed = _try("examples.owner_policy:adapter", "post", "/v1.41/containers/create", "--body-json",
                   '{"Image": "busybox"}', "--as", "uid=0")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(json.loads(allowed.stdout)["body"]) == {"Image": "busybox", "Labels": {"owner": "root"}}


def test_adapter_try_runs_a_post_hook_on_a_given_answer() -> None:
    shown = _try("examples.owner_policy:adapter", "GET", "/v1.41/containers/json", "--response-json", "[]",
                 "--code", "200")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "allowed": True, "status": 200, "message": None, "content_type": "application/json", "body": "[]",
        "warnings": [], "outcome": "ok"}


def test_adapter_try_says_what_is_wrong() -> None:
    missing = _try("no_such_module:adapter", "GET", "/_ping")
    assert missing.returncode == 1 and "cannot import 'no_such_module'" in missing.stderr
    bad_client = _try("examples.owner_policy:adapter", "GET", "/_ping", "--as", "user=root")
    assert bad_client.returncode == 2 and "expected uid=N" in bad_client.stderr
    bad_header = _try("examples.owner_policy:adapter", "GET", "/_ping", "--header", "X-A")
    assert bad_header.returncode == 2 and "expected 'Name: value'" in bad_header.stderr
    both = _try("examples.owner_policy:adapter", "POST", "/v1.41/containers/create", "--body-json", "{}",
                "--body", "README.md")
    assert both.returncode == 2 and "not both" in both.stderr
