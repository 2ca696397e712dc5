"""``python -m bench.relay_ab`` (``make bench-relay``): the unhooked relay's own cost, A/B against HAProxy,
with a daemon that costs nothing.

In the full suite the daemon (dockerd, a Go process on the same two CPUs) takes most of the machine, and
its share moves every figure. Here the daemon is a fake that answers every request at once: HAProxy's
``http-request return`` on a unix socket, with the headers dockerd sends for ``/_ping`` (its ``Date``
included, so a memoised head changes every second as dockerd's does), after reading a request's whole body
(``http-buffer-request``: the connection stays usable for the next one, as dockerd's does). In front of it,
taking turns:

- ``haproxy``: HAProxy 2.6 as a plain pass-through (as in the suite);
- ``powerstrip``: the gateway with no config, access log on (its default);
- ``floor``: ``bench.floor_relay``, uvloop Protocols copying bytes and nothing else — the least a Python
  relay can cost; powerstrip's own work per request is its difference to this line;
- ``direct``: the fake daemon itself over TCP, the baseline of each relay's added latency.

wrk drives ``GET /_ping`` at each concurrency; the figure to trust is the relay process's CPU per request
(user and system from /proc/PID/stat), the median of the repetitions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from bench import candidates as cands
from bench import wrk
from bench.procs import cpu_times
from bench.stats import median
from harness.gateway import free_tcp_port
from harness.util import remove_tree, terminate, wait_until

FAKE_DAEMON_CFG = cands.HAPROXY_DEFAULTS + """\
frontend fake_dockerd
    option http-buffer-request
    bind unix@{socket} mode 600
    bind 127.0.0.1:{port}
    http-request return status 200 content-type "text/plain; charset=utf-8" string "OK" hdr Api-Version 1.41 \
hdr Cache-Control "no-cache, no-store, must-revalidate" hdr Date "%[date,http_date]" hdr Docker-Experimental false \
hdr Ostype linux hdr Pragma no-cache hdr Server "Docker/20.10.24 (linux)"
"""
RESULTS = Path(__file__).resolve().parent / "results"


def fake_daemon(stack: ExitStack) -> tuple[str, cands.Candidate]:
    """The fake daemon's unix socket (what the relays forward to), and itself over TCP (the latency baseline)."""
    workdir = tempfile.mkdtemp(prefix="psb-fake-", dir="/tmp")
    stack.callback(remove_tree, workdir)
    socket_path = str(Path(workdir, "docker.sock"))
    port = free_tcp_port()
    cfg = Path(workdir, "fake.cfg")
    cfg.write_text(FAKE_DAEMON_CFG.format(socket=socket_path, port=port))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    stack.callback(terminate, proc)
    wait_until(lambda: Path(socket_path).exists() and cands.tcp_ping(port), 10, 0.05, "the fake daemon")
    return socket_path, cands.Candidate("direct", "the fake daemon itself", port, proc.pid)


def _measure(cand: cands.Candidate, connections: int, seconds: int) -> dict:
    assert cand.pid is not None
    before = cpu_times(cand.pid)
    result = wrk.run(cand.url + "/_ping", connections, seconds)
    after = cpu_times(cand.pid)
    per = 1e6 / result.requests
    return {"rps": result.rps, "p50": result.p50_us, "user": (after.user - before.user) * per,
            "system": (after.system - before.system) * per}


def run(concurrencies: tuple[int, ...], seconds: int, repetitions: int, progress) -> list[dict]:
    """Rows of (candidate, c) with the medians over ``repetitions``; candidates take turns run by run."""
    with ExitStack() as stack:
        socket_path, direct = fake_daemon(stack)
        relay = cands.haproxy(socket_path)
        stack.callback(relay.stop)
        ps = cands.powerstrip(f"unix://{socket_path}", "powerstrip", "powerstrip, no config")
        stack.callback(ps.stop)
        floor = cands.floor(socket_path)
        stack.callback(floor.stop)
        lineup = [direct, relay, ps, floor]
        cands.settle()
        for cand in lineup:
            wrk.run(cand.url + "/_ping", 10, 1)  # warm-up
        runs: dict[tuple[str, int], list[dict]] = {}
        for repetition in range(repetitions):
            for c in concurrencies:
                for cand in lineup:
                    progress(f"relay A/B {repetition + 1}/{repetitions}: {cand.name} c={c}")
                    runs.setdefault((cand.name, c), []).append(_measure(cand, c, seconds))
    rows = []
    for (name, c), measured in runs.items():
        user, system = median([m["user"] for m in measured]), median([m["system"] for m in measured])
        rows.append({"candidate": name, "connections": c, "rps": median([m["rps"] for m in measured]),
                     "p50_us": median([m["p50"] for m in measured]),
                     "user_us": user, "system_us": system, "cpu_us": median([m["user"] + m["system"] for m in measured])})
    return rows


def report(rows: list[dict], meta: str) -> str:
    """The table; ``direct`` is the fake daemon itself: its p50 is the baseline of the added latency (its CPU is
    the daemon's, not a relay's, so it has no ratio)."""
    haproxy = {r["connections"]: r["cpu_us"] for r in rows if r["candidate"] == "haproxy"}
    direct = {r["connections"]: r["p50_us"] for r in rows if r["candidate"] == "direct"}
    lines = [f"# Relay A/B against a fake daemon {meta}", "",
             "| c | candidate | req/s | p50 µs | added p50 µs | CPU µs/req | user µs | system µs | CPU ÷ HAProxy's |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["connections"], r["candidate"])):
        c = r["connections"]
        relay = r["candidate"] != "direct"
        added = f"+{r['p50_us'] - direct[c]:.0f}" if relay else ""
        ratio = f"{r['cpu_us'] / haproxy[c]:.2f}" if relay else ""
        lines.append(f"| {c} | {r['candidate']} | {r['rps']:,.0f} | {r['p50_us']:.0f} | {added} | {r['cpu_us']:.1f} | "
                     f"{r['user_us']:.1f} | {r['system_us']:.1f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_ab", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--connections", type=int, action="append", help="repeatable (default 1, 10, 50)")
    args = parser.parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    rows = run(tuple(args.connections or (1, 10, 50)), args.seconds, args.repetitions,
               lambda message: print(message, file=sys.stderr))
    text = report(rows, f"{stamp} ({args.repetitions} × {args.seconds} s, medians)")
    publish("relay-ab", stamp, text)
    return 0


def publish(name: str, stamp: str, text: str) -> None:
    """A report as ``bench/results/NAME-STAMP.md``, and on stdout."""
    RESULTS.mkdir(exist_ok=True)
    Path(RESULTS, f"{name}-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
