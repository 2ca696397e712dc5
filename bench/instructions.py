"""``python -m bench.instructions`` (``make bench-instructions``): user-space instructions per request, counted.

CPU µs per request move by a tenth between runs on this machine; the number of instructions a relay
executes for a request does not (valgrind's callgrind counts them, whatever else the machine does). Each
candidate runs under callgrind in front of ``bench.relay_ab``'s fake daemon; the counters are zeroed,
``REQUESTS`` requests go over one kept-alive connection (c=1), and the counters are dumped
(``callgrind_control``): their total over ``REQUESTS`` is the figure.

- ``GET /_ping``: the floor (``bench.floor_relay``), HAProxy, powerstrip with the access log off and on;
  powerstrip's own work is its difference to the floor.
- ``GET /_ping`` through powerstrip with one in-process pre-hook (``bench.noop``): the hook machinery alone (no
  body to de-frame or canonicalise).
- ``POST /containers/create`` with the docker CLI's ~2 KiB body: HAProxy, powerstrip unhooked, powerstrip
  with one in-process pre-hook: the hook path's instructions, canonicalisation included.

Instructions are not time: the kernel's share (the same system calls for every relay here) is not in
them, and Python's interpreter runs fewer instructions per cycle than HAProxy's C. They say how much
work a relay does, so a change to the hot path can be judged by one run; the CPU figures of
``make bench`` stay the ones the targets are judged on.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench import candidates as cands
from bench.canonical import SAMPLE
from bench.relay_ab import fake_daemon, publish
from harness.gateway import Gateway, free_tcp_port
from harness.util import HarnessError, remove_tree, terminate, wait_until

REQUESTS = 1000
VALGRIND = ("valgrind", "--tool=callgrind")
PING = b"GET /_ping HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"
_BODY = SAMPLE.read_bytes()
CREATE = (b"POST /v1.41/containers/create?name=psb-instructions HTTP/1.1\r\nHost: bench\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(_BODY)) + _BODY
HOOK_CONFIG = (f'endpoints:\n  "POST /*/containers/create":\n    pre: [noop]\n  "GET /_ping":\n    pre: [noop]\n'
               f'adapters:\n  noop: python:{cands.NOOP_ADAPTER}\n')
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.M)


@dataclass(frozen=True, slots=True)
class Counted:
    """A relay running under callgrind: where it listens, and the files its counter dumps go to."""

    name: str
    port: int
    pid: int
    out_prefix: str


def _under_callgrind(workdir: str, name: str) -> tuple[list[str], str]:
    prefix = str(Path(workdir, f"{name}.callgrind"))
    return [*VALGRIND, f"--callgrind-out-file={prefix}.%p"], prefix


def _start_process(stack: ExitStack, workdir: str, name: str, argv_for: Callable[[int], list[str]]) -> Counted:
    port = free_tcp_port()
    valgrind, prefix = _under_callgrind(workdir, name)
    argv = argv_for(port)
    with open(Path(workdir, f"{name}.log"), "wb") as log:
        proc = subprocess.Popen([*valgrind, *argv], cwd=str(cands.BENCH_DIR.parent), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    stack.callback(terminate, proc)
    wait_until(lambda: proc.poll() is None and cands.tcp_ping(port, 10), 180, 0.5, f"{name} under callgrind")
    return Counted(name, port, proc.pid, prefix)


def _start_gateway(stack: ExitStack, workdir: str, name: str, socket_path: str, log_level: str,
                   config_text: str | None = None) -> Counted:
    valgrind, prefix = _under_callgrind(workdir, name)
    config = None
    if config_text is not None:
        config = Path(workdir, f"{name}.yml")
        config.write_text(config_text)
    gateway = Gateway(f"unix://{socket_path}", config=config, tcp=True, log_level=log_level, start_timeout=180,
                      command=[*valgrind, sys.executable, "-m", "powerstrip"], stop_timeout=120)
    gateway.start()
    stack.callback(gateway.stop)
    assert gateway.proc is not None and gateway.tcp_port is not None
    wait_until(lambda: cands.tcp_ping(gateway.tcp_port, 10), 180, 0.5, f"{name} under callgrind")
    return Counted(name, gateway.tcp_port, gateway.proc.pid, prefix)


def _exchange(conn: socket.socket, request: bytes) -> None:
    """One request, and its whole answer read (a Content-Length one: the fake daemon's)."""
    conn.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if match is None or not head.startswith(b"HTTP/1.1 2"):
        raise HarnessError(f"unexpected answer: {head[:200]!r}")
    while len(body) < int(match.group(1)):
        body += _recv(conn)


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    if not chunk:
        raise HarnessError("the relay closed the connection")
    return chunk


def _control(pid: int, command: str) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True, timeout=120)


def count(relay: Counted, request: bytes, requests: int) -> float:
    """Instructions per request: counters zeroed, ``requests`` exchanges, counters dumped."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=60) as conn:
        for _ in range(20):  # warm: connections open, caches and memos filled
            _exchange(conn, request)
        _control(relay.pid, "--zero")
        for _ in range(requests):
            _exchange(conn, request)
        before = _dumps(relay)
        _control(relay.pid, "--dump")
    wait_until(lambda: bool(_dumps(relay) - before), 60, 0.2, f"{relay.name}'s counter dump")
    total = 0
    for dump in _dumps(relay) - before:  # one file per thread that ran (HAProxy's)
        match = _TOTAL.search(dump.read_bytes())
        if match is None:
            raise HarnessError(f"no total in {dump}")
        total += int(match.group(1))
    return total / requests


def _dumps(relay: Counted) -> set[Path]:
    prefix = Path(relay.out_prefix)
    return set(prefix.parent.glob(prefix.name + ".*"))


def _haproxy_argv(workdir: str, socket_path: str, port: int) -> list[str]:
    cfg = Path(workdir, "haproxy.cfg")
    cfg.write_text(cands.HAPROXY_CFG.format(port=port, socket=socket_path))
    return ["haproxy", "-db", "-f", str(cfg)]


def run(requests: int, progress) -> list[dict]:
    """Rows of (request, candidate, instructions per request)."""
    rows: list[dict] = []
    with ExitStack() as stack:
        workdir = tempfile.mkdtemp(prefix="psb-instructions-", dir="/tmp")
        stack.callback(remove_tree, workdir)
        socket_path, _ = fake_daemon(stack)
        lineup = [
            ("GET /_ping", PING, lambda: _start_process(
                stack, workdir, "floor",
                lambda port: [sys.executable, "-m", "bench.floor_relay", str(port), socket_path])),
            ("GET /_ping", PING, lambda: _start_process(
                stack, workdir, "haproxy", lambda port: _haproxy_argv(workdir, socket_path, port))),
            ("GET /_ping", PING, lambda: _start_gateway(stack, workdir, "powerstrip (log off)", socket_path,
                                                        "warning")),
            ("GET /_ping", PING, lambda: _start_gateway(stack, workdir, "powerstrip (log on)", socket_path, "info")),
        ]
        started: dict[str, Counted] = {}
        for request_name, request, start in lineup:
            progress(f"instructions: {request_name} through a relay under callgrind")
            relay = start()
            started[relay.name] = relay
            rows.append({"request": request_name, "candidate": relay.name, "ir": count(relay, request, requests)})
        hooked = _start_gateway(stack, workdir, "powerstrip, in-process hook", socket_path, "warning", HOOK_CONFIG)
        progress("instructions: GET /_ping through powerstrip with an in-process hook")
        rows.append({"request": "GET /_ping", "candidate": hooked.name, "ir": count(hooked, PING, requests)})
        for relay in (started["haproxy"], started["powerstrip (log off)"], hooked):
            progress(f"instructions: POST /containers/create through {relay.name}")
            name = "powerstrip (unhooked)" if relay.name == "powerstrip (log off)" else relay.name
            rows.append({"request": "POST /containers/create (2 KiB)", "candidate": name,
                         "ir": count(relay, CREATE, requests)})
    return rows


def report(rows: list[dict], meta: str) -> str:
    haproxy = {r["request"]: r["ir"] for r in rows if r["candidate"] == "haproxy"}
    floor = {r["request"]: r["ir"] for r in rows if r["candidate"] == "floor"}
    lines = [f"# User-space instructions per request (callgrind) {meta}", "",
             "| request | candidate | instructions | ÷ HAProxy's | over the floor |", "|---|---|---:|---:|---:|"]
    for r in rows:
        over = f"{r['ir'] - floor[r['request']]:,.0f}" if r["request"] in floor and r["candidate"] != "floor" else ""
        lines.append(f"| {r['request']} | {r['candidate']} | {r['ir']:,.0f} | {r['ir'] / haproxy[r['request']]:.2f} "
                     f"| {over} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help=f"requests counted per row ({REQUESTS})")
    args = parser.parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    started = time.monotonic()
    rows = run(args.requests, lambda message: print(message, file=sys.stderr, flush=True))
    text = report(rows, f"{stamp} ({args.requests} requests per row, c=1, {time.monotonic() - started:.0f} s)")
    publish("instructions", stamp, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
