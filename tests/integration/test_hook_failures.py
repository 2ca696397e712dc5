"""Every failure inside the hook path is answered with a status and a message, never a dropped connection.

Real gateway and dockerd, a real in-process SDK adapter (tests/integration/misbehaving_adapter.py) failing on
purpose; the access log and the audit log stay one line per request, control characters escaped.
"""

from __future__ import annotations

import json
import socket

import pytest

from harness import rawhttp
from harness.ops import wait_for_log
from harness.util import wait_until

pytestmark = pytest.mark.docker

CONFIG = json.dumps({
    "endpoints": {"POST /*/containers/create": {"pre": ["bad"]}, "GET /*/version": {"post": ["bad"]}},
    "adapters": {"bad": "python:tests.integration.misbehaving_adapter:adapter"},
})


@pytest.fixture
def gw(make_gateway):
    return make_gateway(CONFIG)


def create(gw, mode: str, body: bytes = b'{"Image": "ps-busybox", "Cmd": ["true"]}') -> rawhttp.Reply:
    return rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/create?misbehave={mode}", body,
                           {"Content-Type": "application/json"})


@pytest.mark.parametrize("mode, status, words", [
    ("recursion", 502, "RecursionError"),
    ("crlf-target", 502, "request target"),
    ("bad-method", 502, "method"),
    ("surrogate-body", 502, "surrogate"),
    ("ambiguous-body", 502, "different values"),
])
def test_a_failing_pre_hook_gets_an_answer(gw, mode, status, words):
    reply = create(gw, mode)
    assert reply.status == status, reply.body
    message = json.loads(reply.body)["message"]
    assert message.startswith("adapter bad:") and words in message, message


def test_a_post_hook_cannot_split_the_response(gw):
    reply = rawhttp.request(gw.socket_path, "GET", "/v1.41/version?misbehave=content-type")
    assert reply.status == 502, reply.body
    assert "set-cookie" not in reply.headers
    assert "control characters" in json.loads(reply.body)["message"]


@pytest.mark.parametrize("body, words", [
    (b'{"Image": "ps-busybox"} {"HostConfig": {"Privileged": true}}', "data after"),
    (b'{"Image": "ps-busybox", "HostConfig": {"Privileged": false, "privileged": true}}', "different values"),
    (b'{"Image": "ps-busybox", "HostConfig": ' + b"[" * 70 + b"]" * 70 + b"}", "an array"),
    (b'{"Image": "ps-busybox", "Future": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper"),
    (b'\xef\xbb\xbf{"Image": "ps-busybox"}', "byte order mark"),
    (b'{"Image": "\\udc00"}', "surrogate"),
    (b'{"Image": "ps-busybox", "StopTimeout": NaN}', "NaN"),
])
def test_a_body_dockerd_would_read_otherwise_is_refused_before_any_hook(gw, body, words):
    reply = create(gw, "none", body)
    assert reply.status == 400, reply.body
    assert words in json.loads(reply.body)["message"]


def test_log_lines_cannot_be_forged_and_malformed_requests_are_logged(make_gateway, tmp_path):
    audit = tmp_path / "audit.jsonl"
    gw = make_gateway(CONFIG, extra_args=["--audit-log", str(audit)])
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(gw.socket_path)
        sock.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    wait_for_log(gw, "POST /v1.41/containers/create -> 400")
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(entry["status"] == 400 and entry["method"] == "POST" and entry["fault"] == "client"
               for entry in entries), entries
    assert create(gw, "recursion").status == 502  # the adapter gave no usable answer: its fault, not the client's
    wait_until(lambda: len(audit.read_text().splitlines()) > len(entries), 10, 0.05, "the audit entry")
    failed = json.loads(audit.read_text().splitlines()[-1])
    assert (failed["status"], failed["fault"]) == (502, "adapter") and "RecursionError" in failed["error"]
    reply = create(gw, "crlf-message")
    assert reply.status == 403
    wait_for_log(gw, "refused\\x0d\\x0a2026")  # the adapter's CR LF, escaped in the access line
    assert "GET /forged" not in "".join(line.partition("refused")[0] for line in gw.log_text().splitlines())
