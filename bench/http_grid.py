"""``GET /_ping`` and ``GET /containers/json`` at several concurrencies, every candidate, same wrk.

Besides wrk's figures, the CPU time the process behind each port spent per request is recorded
(/proc/PID/stat): on a machine shared with other work it moves far less than req/s does. So are the
daemon's CPU per request and the share of the machine that was busy: where a relay's req/s ratio trails
another's at the same CPU per request, these say whether the daemon did more work behind it or the cores
idled (a single-threaded relay that every request passes through leaves a core idle whenever the
requests queue at it).

Candidates are interleaved inside each repetition (direct, haproxy, powerstrip, ..., then again), so
slow drifts of this shared machine hit them alike; each figure is the median over the repetitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import wrk
from bench.candidates import Candidate
from bench.procs import cpu_seconds, machine_times
from bench.stats import median

ENDPOINTS = ("/_ping", "/containers/json")


@dataclass(frozen=True)
class GridSettings:
    concurrencies: tuple[int, ...]
    seconds: int
    repetitions: int
    warmup_seconds: int


@dataclass(frozen=True, slots=True)
class _Run:
    """One wrk run against one candidate, with what the machine spent meanwhile."""

    result: wrk.WrkResult
    cpu_us: float          # the candidate's process, per request
    daemon_cpu_us: float   # the daemon's, per request (the candidate's own for ``direct``)
    machine_busy: float    # share of all cores busy, 0..1


def run(candidates: list[Candidate], settings: GridSettings, progress, daemon_pid: int) -> list[dict]:
    rows = []
    for endpoint in ENDPOINTS:
        for cand in candidates:  # warm-up: connections, caches, the gateway's first-request paths
            wrk.run(cand.url + endpoint, 10, settings.warmup_seconds)
        for c in settings.concurrencies:
            runs: dict[str, list[_Run]] = {cand.name: [] for cand in candidates}
            for _ in range(settings.repetitions):
                for cand in candidates:
                    runs[cand.name].append(_measure(cand, endpoint, c, settings.seconds, daemon_pid))
            for cand in candidates:
                measured = runs[cand.name]
                results = [m.result for m in measured]
                row = {
                    "workload": "http", "endpoint": endpoint, "concurrency": c, "candidate": cand.name,
                    "rps": median([r.rps for r in results]),
                    "p50_us": median([r.p50_us for r in results]),
                    "p99_us": median([r.p99_us for r in results]),
                    # CPU the process behind the port spent per request: steadier than req/s on a busy machine
                    "cpu_us_per_req": median([m.cpu_us for m in measured]),
                    "daemon_cpu_us_per_req": median([m.daemon_cpu_us for m in measured]),
                    "machine_busy": median([m.machine_busy for m in measured]),
                    "runs": [r.as_dict() for r in results],
                }
                rows.append(row)
                progress(f"GET {endpoint} c={c} {cand.name}: {row['rps']:.0f} req/s, "
                         f"p50 {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs, {row['cpu_us_per_req']:.0f} CPU-µs/req")
    _add_ratios(rows)
    return rows


def _measure(cand: Candidate, endpoint: str, connections: int, seconds: int, daemon_pid: int) -> _Run:
    assert cand.pid is not None
    machine, own, daemon = machine_times(), cpu_seconds(cand.pid), cpu_seconds(daemon_pid)
    result = wrk.run(cand.url + endpoint, connections, seconds)
    per_request = 1e6 / result.requests
    return _Run(result, (cpu_seconds(cand.pid) - own) * per_request, (cpu_seconds(daemon_pid) - daemon) * per_request,
                machine_times().busy_since(machine))


def _add_ratios(rows: list[dict]) -> None:
    direct = {(r["endpoint"], r["concurrency"]): r for r in rows if r["candidate"] == "direct"}
    for row in rows:
        ref = direct.get((row["endpoint"], row["concurrency"]))
        if ref is None:
            continue
        row["rps_ratio"] = row["rps"] / ref["rps"]
        row["added_p50_us"] = row["p50_us"] - ref["p50_us"]
        row["added_p99_us"] = row["p99_us"] - ref["p99_us"]
