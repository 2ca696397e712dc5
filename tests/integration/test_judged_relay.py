"""Requests the pre-hooks let through go back to the relay machine (``Judged``): every request of the docker CLI,
pipelined ones, HTTP/1.0 and a half-close, hooked by an in-process adapter on ``* /*``, against the real daemon."""

from __future__ import annotations

import re
import socket

import pytest

from harness.cli import run_docker
from harness.gateway import Gateway
from harness.image import IMAGE
from harness.ops import config
from harness.util import wait_until

pytestmark = pytest.mark.docker

EVERYTHING = config({"* /*": {"pre": ["pass"]}}, {"pass": "python:tests.integration.pass_adapter:adapter"})


def _logged(gw: Gateway, pattern: str) -> None:
    """Wait (bounded) for an access log line matching ``pattern``."""
    wait_until(lambda: re.search(pattern, gw.log_text()) is not None, 15, 0.05, f"{pattern!r} in the gateway log")


def _exchange(path: str, data: bytes, half_close: bool = False) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        parts = []
        while chunk := sock.recv(65536):
            parts.append(chunk)
    return b"".join(parts)


def test_the_docker_cli_runs_a_container_with_every_request_hooked(make_gateway, uniq):
    gw = make_gateway(EVERYTHING)
    result = run_docker(gw.url, "run", "--rm", "--name", f"judged-{uniq}", IMAGE, "echo", "judged relay")
    assert result.rc == 0, result.err
    assert result.out.strip() == "judged relay"
    # the attach upgraded to a raw stream after its hook: spliced by the machine, as an unhooked one
    _logged(gw, r"POST /v1\.\d+/containers/\S+/attach\S* -> 101 .*hooks=pre:pass=ok")


def test_pipelined_hooked_requests_and_a_half_close_are_all_answered_in_order(make_gateway):
    gw = make_gateway(EVERYTHING)
    answer = _exchange(gw.socket_path, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"
                       b"GET /v1.41/version HTTP/1.1\r\nHost: d\r\n\r\n"
                       b"GET /v1.41/nosuch HTTP/1.1\r\nHost: d\r\n\r\n", half_close=True)
    assert re.findall(rb"HTTP/1\.1 (\d{3})", answer) == [b"200", b"200", b"404"], answer
    assert answer.index(b"OK") < answer.index(b'"ApiVersion"')
    _logged(gw, r"GET /v1\.41/nosuch -> 404 .*hooks=pre:pass=ok")


def test_a_hooked_http10_request_is_answered_and_its_connection_closed(make_gateway):
    gw = make_gateway(EVERYTHING)
    answer = _exchange(gw.socket_path, b"GET /_ping HTTP/1.0\r\n\r\n")  # no half-close: the gateway must close
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0] and answer.endswith(b"OK"), answer
