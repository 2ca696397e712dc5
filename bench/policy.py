"""``python -m bench.policy`` (``make bench-policy``; also the ``policy`` workload of ``make bench``): what the
built-in policy costs (issue 12's speed targets), against a private dockerd.

Two gateways side by side: no config (the unhooked relay), and one with ``builtin:policy`` on ``* /*`` with a rules
file whose allowed paths need no body check. Figures, each the median of the repetitions:

- CPU per request (gateway process, /proc/PID/stat) for ``GET /_ping`` at c=10 with wrk: allowed by path
  rules vs unhooked (target: ≤ 1.2×);
- CPU per request for a denied request (``GET /info``, 403) vs an allowed one (``GET /_ping``), same keep-alive
  client loop (target: denied ≤ allowed);
- p50 latency of a body-checked ``POST /containers/create`` (an image that does not exist, so the daemon
  answers 404 at once and the figure is the gateway's) through the policy vs through the unhooked gateway
  (target: ≤ 0.3 ms added).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench import wrk
from bench.candidates import tcp_ping
from bench.client import DockerApi
from bench.procs import cpu_seconds
from bench.report import policy_targets
from bench.stats import median, percentile
from harness.dockerd import PrivateDockerd
from harness.gateway import Gateway
from harness.image import build_test_image
from harness.util import remove_tree, wait_until

RULES = """\
profiles:
  - name: everyone
    rules:
      - deny: GET /info
        reason: benchmark denial
      - allow: ["GET,HEAD /_ping", "GET /version", "GET /containers/json"]
      - allow: POST /containers/create
"""
CONFIG = {"endpoints": {"* /*": {"pre": ["policy"]}},
          "adapters": {"policy": {"url": "builtin:policy", "rules": "policy.yml"}}}


def _gateway(docker_url: str, config: Path | None) -> Gateway:
    gw = Gateway(docker_url, config=config, tcp=True, log_level="warning")
    gw.start()
    wait_until(lambda: tcp_ping(gw.tcp_port), 10, 0.05, "/_ping over TCP")
    return gw


def _wrk_cpu(gw: Gateway, path: str, seconds: int) -> tuple[float, float]:
    before = cpu_seconds(gw.proc.pid)
    result = wrk.run(f"http://127.0.0.1:{gw.tcp_port}{path}", 10, seconds)
    return (cpu_seconds(gw.proc.pid) - before) / result.requests * 1e6, result.rps


# Requests of each keep-alive loop: /proc counts CPU in clock ticks (10 ms), so the loop's figure is a whole
# multiple of tick ÷ count; 10,000 make that 1 µs (2,000 made it 5 µs, a tenth of the figure).
LOOP_REQUESTS = 10_000


def _loop_cpu(gw: Gateway, path: str, count: int, expect: int) -> float:
    api = DockerApi(gw.tcp_port)
    try:
        before = cpu_seconds(gw.proc.pid)
        for _ in range(count):
            api.call("GET", path, expect=(expect,))
        return (cpu_seconds(gw.proc.pid) - before) / count * 1e6
    finally:
        api.close()


def _create_p50(gw: Gateway, samples: int) -> float:
    api = DockerApi(gw.tcp_port)
    try:
        times = [api.call("POST", f"/containers/create?name=psb-pol-{i}", {"Image": "psb-missing:latest", "Cmd": ["true"]},
                          expect=(404,))[0] * 1e6 for i in range(samples)]
        return percentile(times[10:], 50)
    finally:
        api.close()


def run(docker_url: str, seconds: int, repetitions: int, progress) -> list[dict]:
    """Rows of the workloads ``policy_ping``, ``policy_denied``, ``policy_create`` (medians of ``repetitions``)."""
    workdir = Path(tempfile.mkdtemp(prefix="psb-policy-", dir="/tmp"))
    (workdir / "policy.yml").write_text(RULES)
    (workdir / "adapters.yml").write_text(json.dumps(CONFIG))
    gateways: list[Gateway] = []
    try:
        plain = _gateway(docker_url, None)
        gateways.append(plain)
        policy = _gateway(docker_url, workdir / "adapters.yml")
        gateways.append(policy)
        for gw in gateways:
            wrk.run(f"http://127.0.0.1:{gw.tcp_port}/_ping", 10, 1)  # warm-up
        runs: dict[str, list[float]] = {k: [] for k in ("plain_ping", "policy_ping", "loop_allowed", "loop_denied",
                                                          "create_plain", "create_policy")}
        for repetition in range(repetitions):
            # the pairs alternate which side goes first, so a drift of this shared machine hits both alike
            pairs = [(("plain_ping", lambda: _wrk_cpu(plain, "/_ping", seconds)[0]),
                      ("policy_ping", lambda: _wrk_cpu(policy, "/_ping", seconds)[0])),
                     (("loop_allowed", lambda: _loop_cpu(policy, "/_ping", LOOP_REQUESTS, 200)),
                      ("loop_denied", lambda: _loop_cpu(policy, "/info", LOOP_REQUESTS, 403))),
                     (("create_plain", lambda: _create_p50(plain, 210)),
                      ("create_policy", lambda: _create_p50(policy, 210)))]
            for pair in pairs:
                for key, measure in (pair if repetition % 2 == 0 else pair[::-1]):
                    runs[key].append(measure())
        m = {key: median(values) for key, values in runs.items()}
        rows = [
            {"workload": "policy_ping", "candidate": "policy", "unhooked_cpu_us": m["plain_ping"],
             "policy_cpu_us": m["policy_ping"], "ratio": m["policy_ping"] / m["plain_ping"],
             "runs": {k: runs[k] for k in ("plain_ping", "policy_ping")}},
            {"workload": "policy_denied", "candidate": "policy", "allowed_cpu_us": m["loop_allowed"],
             "denied_cpu_us": m["loop_denied"], "resolution_us": 1e6 / os.sysconf("SC_CLK_TCK") / LOOP_REQUESTS,
             "runs": {k: runs[k] for k in ("loop_allowed", "loop_denied")}},
            {"workload": "policy_create", "candidate": "policy", "unhooked_p50_us": m["create_plain"],
             "policy_p50_us": m["create_policy"], "added_ms": (m["create_policy"] - m["create_plain"]) / 1000,
             "runs": {k: runs[k] for k in ("create_plain", "create_policy")}},
        ]
        progress(f"policy: GET /_ping CPU/request unhooked {m['plain_ping']:.0f} µs, by path rules "
                 f"{m['policy_ping']:.0f} µs ({rows[0]['ratio']:.2f}x); allowed {m['loop_allowed']:.0f} vs denied "
                 f"{m['loop_denied']:.0f} µs; body-checked create +{rows[2]['added_ms']:.3f} ms at p50")
        return rows
    finally:
        for gw in gateways:
            gw.stop()
        remove_tree(str(workdir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args(argv)
    dockerd = PrivateDockerd()
    try:
        dockerd.start()
        build_test_image(dockerd.url)
        rows = run(dockerd.url, args.seconds, args.repetitions, lambda message: print(message, file=sys.stderr))
    finally:
        dockerd.stop()
    print(json.dumps(rows, indent=1))
    for target in policy_targets(rows):
        print(f"{target['target']}: {target['figure']} ({'met' if target['met'] else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
