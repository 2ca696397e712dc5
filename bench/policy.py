"""``python -m bench.policy``: what the built-in policy costs (issue 12's speed targets), against a private dockerd.

Three gateways side by side: no config (the unhooked relay), and ``builtin:policy`` on ``* /*`` with a rules
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
import sys
import tempfile
from pathlib import Path

from bench import wrk
from bench.candidates import tcp_ping
from bench.client import DockerApi
from bench.procs import cpu_seconds
from bench.stats import median, percentile
from tests.harness.dockerd import PrivateDockerd
from tests.harness.gateway import Gateway
from tests.harness.image import build_test_image
from tests.harness.util import remove_tree, wait_until

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="psb-policy-", dir="/tmp"))
    (workdir / "policy.yml").write_text(RULES)
    (workdir / "adapters.yml").write_text(json.dumps(CONFIG))
    dockerd = PrivateDockerd()
    gateways: list[Gateway] = []
    try:
        dockerd.start()
        build_test_image(dockerd.url)
        plain = _gateway(dockerd.url, None)
        gateways.append(plain)
        policy = _gateway(dockerd.url, workdir / "adapters.yml")
        gateways.append(policy)
        for gw in gateways:
            wrk.run(f"http://127.0.0.1:{gw.tcp_port}/_ping", 10, 1)  # warm-up
        figures: dict[str, list[float]] = {k: [] for k in ("plain_ping", "policy_ping", "loop_allowed", "loop_denied",
                                                             "create_plain", "create_policy")}
        for _ in range(args.repetitions):
            figures["plain_ping"].append(_wrk_cpu(plain, "/_ping", args.seconds)[0])
            figures["policy_ping"].append(_wrk_cpu(policy, "/_ping", args.seconds)[0])
            figures["loop_allowed"].append(_loop_cpu(policy, "/_ping", 2000, 200))
            figures["loop_denied"].append(_loop_cpu(policy, "/info", 2000, 403))
            figures["create_plain"].append(_create_p50(plain, 210))
            figures["create_policy"].append(_create_p50(policy, 210))
        m = {key: median(values) for key, values in figures.items()}
        print(json.dumps({"figures": figures, "medians": m}, indent=1))
        ratio = m["policy_ping"] / m["plain_ping"]
        added = (m["create_policy"] - m["create_plain"]) / 1000
        print(f"GET /_ping c=10 CPU/request: unhooked {m['plain_ping']:.0f} µs, policy (path rules) "
              f"{m['policy_ping']:.0f} µs = {ratio:.2f}x (target <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})")
        print(f"keep-alive loop CPU/request through the policy: allowed /_ping {m['loop_allowed']:.0f} µs, denied "
              f"/info {m['loop_denied']:.0f} µs (target denied <= allowed: "
              f"{'met' if m['loop_denied'] <= m['loop_allowed'] * 1.05 else 'NOT met'}, 5% noise allowed)")
        print(f"POST /containers/create (body checked, daemon 404) p50: unhooked {m['create_plain']:.0f} µs, policy "
              f"{m['create_policy']:.0f} µs, added {added:.3f} ms (target <= 0.3 ms: {'met' if added <= 0.3 else 'NOT met'})")
        return 0
    finally:
        for gw in gateways:
            gw.stop()
        dockerd.stop()
        remove_tree(str(workdir))


if __name__ == "__main__":
    sys.exit(main())
