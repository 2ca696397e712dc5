"""``python -m bench [--quick]``: the whole suite in one run against a private dockerd.

Set-up (a dockerd in its own netns with an extra TCP listener, the test image, HAProxy, powerstrip
gateways, the no-op adapter) and tear-down (containers, processes, netns) are done here, also when a
workload fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from bench import candidates as cands
from bench import canonical, hooks, hostaware, http_grid, lifecycle, netns, policy, report, streams
from bench.candidates import Candidate
from harness.compare import remove_everything_named
from harness.dockerd import PrivateDockerd
from harness.image import build_test_image

DAEMON_TCP_PORT = 2375  # inside the private netns: nothing else listens there
WORKLOADS = ("http", "streams", "events", "lifecycle", "hooks", "hostaware", "policy")

FULL = dict(concurrencies=(1, 10, 50), seconds=2, repetitions=3, warmup=1, archive_mib=1024, logs_mib=256,
            stream_reps=3, idle_streams=1000, cycles=20, hook_samples=200,
            hook_refused_samples=1000, canonical_samples=5000,
            hostaware_seconds=60, policy_seconds=3, policy_repetitions=5)
QUICK = dict(concurrencies=(1, 10, 50), seconds=1, repetitions=1, warmup=1, archive_mib=128, logs_mib=32,
             stream_reps=1, idle_streams=1000, cycles=5, hook_samples=40,
             hook_refused_samples=200, canonical_samples=1000,
             hostaware_seconds=20, policy_seconds=1, policy_repetitions=2)


def _progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _raise_nofile(want: int = 65536) -> None:
    """1,000 streams need ~2,000 descriptors in a gateway; children inherit this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def _meta(args: argparse.Namespace, started: str) -> dict:
    commit = _version(["git", "-C", str(cands.BENCH_DIR.parent), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(cands.BENCH_DIR.parent), "status", "--porcelain", "--", "powerstrip"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "started": started, "mode": "quick" if args.quick else "full", "commit": commit + ("+dirty" if dirty else ""),
        "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start",
        "versions": {"python": platform.python_version(), "dockerd": _version(["dockerd", "--version"]),
                     "haproxy": _version(["haproxy", "-v"]), "wrk": _version(["wrk", "--version"]),
                     "curl": _version(["curl", "--version"])},
        "powerstrip_log_level": args.log_level, "candidates": [], "notes": [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, smaller streams (about 2 minutes)")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="run only these workloads (repeatable)")
    parser.add_argument("--out", type=Path, default=cands.BENCH_DIR / "results", help="where results go")
    parser.add_argument("--log-level", default="info", help="powerstrip's --log-level (default: its own default)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (a private dockerd in a network namespace)")
    settings = QUICK if args.quick else FULL
    workloads = set(args.only or WORKLOADS)
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = {"meta": _meta(args, started), "settings": settings, "rows": []}
    _raise_nofile()
    prefix = f"psb-{secrets.token_hex(3)}"
    t0 = time.monotonic()

    dockerd = PrivateDockerd(extra_args=("-H", f"tcp://127.0.0.1:{DAEMON_TCP_PORT}"))
    try:
        _progress("starting a private dockerd")
        dockerd.start()
        build_test_image(dockerd.url)
        with netns.inside(dockerd.netns), ExitStack() as stack:
            _run(args, settings, workloads, dockerd, prefix, results, stack)
    finally:
        try:
            if dockerd.dir:
                remove_everything_named(dockerd.url, prefix)
        finally:
            dockerd.stop()
    results["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    json_path, md_path = report.write(results, args.out, started)
    print(md_path.read_text())
    _progress(f"results: {json_path} and {md_path} ({results['meta']['seconds']:.0f} s)")
    return 0


def _run(args, settings: dict, workloads: set[str], dockerd: PrivateDockerd, prefix: str, results: dict,
         stack: ExitStack) -> None:
    meta = results["meta"]

    def start(cand: Candidate) -> Candidate:
        stack.callback(cand.stop)
        meta["candidates"].append({"name": cand.name, "label": cand.label})
        return cand

    cands.wait_for_tcp(DAEMON_TCP_PORT)
    direct = start(cands.direct(DAEMON_TCP_PORT, dockerd.proc.pid))
    haproxy = start(cands.haproxy(dockerd.socket_path))
    plain = start(cands.powerstrip(dockerd.url, "powerstrip", "powerstrip, no matching hook", log_level=args.log_level))
    baseline = [direct, haproxy, plain]
    # issue 11 states its targets for the relay itself (≤ HAProxy's cost) and for the default, access log on
    # (≤ 1.15× HAProxy's): the same gateway with its access log off, and the floor of any Python relay
    quiet = start(cands.powerstrip(dockerd.url, "powerstrip-nolog", "powerstrip, access log off (--log-level warning)",
                                   log_level="warning"))
    floor = start(cands.floor(dockerd.socket_path))
    routes: list[Candidate] = []
    if "http" in workloads:
        routes = [start(cands.powerstrip(dockerd.url, "powerstrip-routes",
                                         "powerstrip, 315 policy patterns, none matching",
                                         log_level=args.log_level,
                                         config_text=cands.policy_config(f"python:{cands.NOOP_ADAPTER}")))]
    hooked: list[Candidate] = []
    v2: Candidate | None = None
    if cands.sdk_available():
        adapter_port, stop_adapter = cands.adapter_service()
        stack.callback(stop_adapter)
        url = f"http://127.0.0.1:{adapter_port}/"
        hooked = [
            start(cands.powerstrip(dockerd.url, "powerstrip-inproc", "powerstrip, one in-process hook",
                                   f"python:{cands.NOOP_ADAPTER}", args.log_level)),
            start(cands.powerstrip(dockerd.url, "powerstrip-http", "powerstrip, one HTTP hook (protocol v1)",
                                   url, args.log_level)),
        ]
        if "hooks" in workloads:
            v2 = start(cands.powerstrip(dockerd.url, "powerstrip-http-v2", "powerstrip, one HTTP hook (protocol v2)",
                                        f'{{url: "{url}", protocol: 2}}', args.log_level))
    else:
        meta["notes"].append("powerstrip.sdk is not available on this commit: the hooked candidates were not run")
    cands.settle()

    rows = results["rows"]
    if "http" in workloads:
        grid = http_grid.GridSettings(settings["concurrencies"], settings["seconds"], settings["repetitions"],
                                      settings["warmup"])
        rows += http_grid.run(baseline + [quiet, floor] + routes + hooked, grid, _progress, dockerd.proc.pid)
    stream_settings = streams.StreamSettings(settings["archive_mib"], settings["logs_mib"], settings["stream_reps"],
                                             settings["idle_streams"])
    if "streams" in workloads:
        _progress(f"making the stream fixtures ({settings['archive_mib']} MiB file, {settings['logs_mib']} MiB of logs)")
        fixtures = streams.prepare(dockerd.url, prefix, stream_settings)
        rows += streams.transfers(baseline + [floor], fixtures, stream_settings, _progress)
    if "events" in workloads:
        rows += streams.idle_events(baseline, stream_settings, _progress)
    if "lifecycle" in workloads:
        rows += lifecycle.run(baseline + hooked, settings["cycles"], f"{prefix}-cyc", _progress)
    if "hooks" in workloads and hooked:
        hook_candidates = [direct, plain, *hooked, v2]
        rows += hooks.run(hook_candidates, settings["hook_samples"], f"{prefix}-hook", _progress)
        rows += hooks.run(hook_candidates, settings["hook_refused_samples"], f"{prefix}-nohook", _progress,
                          refused=True)
    if "hooks" in workloads:
        rows += canonical.run(settings["canonical_samples"], _progress)
    if "hostaware" in workloads:
        rows += hostaware.run(dockerd.url, settings["hostaware_seconds"], 10, _progress)
    if "policy" in workloads:
        rows += policy.run(dockerd.url, settings["policy_seconds"], settings["policy_repetitions"], _progress)


if __name__ == "__main__":
    sys.exit(main())
