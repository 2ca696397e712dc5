"""``python -m bench.profile``: where powerstrip's relay spends its time, under wrk load.

A private dockerd and one pass-through powerstrip (TCP listener, as in the suite; with ``--hook inproc``, the
no-op SDK adapter as an in-process pre-hook on the measured endpoints, to see the hook path's cost; with
``--hook http``, the same adapter as an HTTP pre-hook served by ``powerstrip adapter run``); wrk drives
``--endpoint`` at ``--connections`` while py-spy samples the gateway (idle frames included, so the
share of time the event loop waits in epoll is visible). Writes the collapsed stacks and a summary
(top functions by own and by inclusive samples) to ``bench/results/profile-<ts>.{txt,md}``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from bench import candidates as cands
from bench import netns, wrk
from bench.__main__ import DAEMON_TCP_PORT, _raise_nofile
from harness.dockerd import PrivateDockerd

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
IDLE = ("select (selectors.py", "run_once", "_run_once", "poll (")


def _frames(stack: str) -> list[str]:
    out = []
    for frame in stack.split(";"):
        m = FRAME.match(frame)
        out.append(f"{m['func']} ({m['file']})" if m else frame)
    return out


def summarise(raw: str, top: int = 25) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = _frames(stack)
        total += n
        leaf = frames[-1]
        if leaf.startswith(("select (", "poll (")) or "epoll" in leaf:
            idle += n
        own[leaf] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples; waiting in the event loop's poll: {100 * idle / total:.1f}%", "",
             "| own % | function (file) |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own.most_common(top)]
    lines += ["", "| inclusive % | function (file) |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--endpoint", default="/containers/json")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--hook", choices=("none", "inproc", "http"), default="none",
                        help="inproc: the noop SDK adapter as an in-process pre-hook on the measured endpoints; "
                             "http: the same adapter as an HTTP pre-hook (protocol v1, its own process)")
    parser.add_argument("--native", action="store_true", help="also sample C frames (uvloop, httptools, the interpreter)")
    parser.add_argument("--out", type=Path, default=cands.BENCH_DIR / "results")
    args = parser.parse_args(argv)
    _raise_nofile()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = args.out / f"profile-{stamp}.txt"
    with PrivateDockerd(extra_args=("-H", f"tcp://127.0.0.1:{DAEMON_TCP_PORT}")) as dockerd:
        with netns.inside(dockerd.netns), ExitStack() as stack:
            adapter = None
            if args.hook == "inproc":
                adapter = f"python:{cands.NOOP_ADAPTER}"
            elif args.hook == "http":
                adapter_port, stop_adapter = cands.adapter_service()
                stack.callback(stop_adapter)
                adapter = f"http://127.0.0.1:{adapter_port}/"
            gateway = cands.powerstrip(dockerd.url, "powerstrip", "powerstrip", adapter, log_level=args.log_level)
            try:
                wrk.run(gateway.url + args.endpoint, args.connections, 2)  # warm-up
                load: dict = {}
                loader = threading.Thread(target=lambda: load.update(
                    result=wrk.run(gateway.url + args.endpoint, args.connections, args.seconds + 2)))
                loader.start()
                spy = subprocess.run([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(gateway.pid),
                                      "--duration", str(args.seconds), "--rate", "250", "--idle", *(["--native"] if args.native else ["--nonblocking"]),
                                      "--format", "raw", "--output", str(raw_path)],
                                     capture_output=True, text=True, timeout=args.seconds + 60)
                loader.join(args.seconds + 60)
            finally:
                gateway.stop()
    if spy.returncode != 0:
        print(spy.stderr, file=sys.stderr)
        return 1
    result = load.get("result")
    what = {"inproc": "the relay, one in-process hook", "http": "the relay, one HTTP hook"}.get(args.hook,
                                                                                              "the unhooked relay")
    head = (f"# Profile of {what} {stamp}\n\nGET {args.endpoint}, c={args.connections}, "
            f"{args.seconds} s under py-spy (250 Hz, --nonblocking), powerstrip --log-level {args.log_level}; "
            f"wrk: {result.rps:.0f} req/s, p50 {result.p50_us:.0f} µs\n\n" if result else "")
    md_path = raw_path.with_suffix(".md")
    md_path.write_text(head + summarise(raw_path.read_text()))
    print(md_path.read_text())
    print(f"collapsed stacks: {raw_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
