"""``GET /_ping`` and ``GET /containers/json`` at several concurrencies, every candidate, same wrk.

Besides wrk's figures, the CPU time the process behind each port spent per request is recorded
(/proc/PID/stat): on a machine shared with other work it moves far less than req/s does.

Candidates are interleaved inside each repetition (direct, haproxy, powerstrip, ..., then again), so
slow drifts of this shared machine hit them alike; each figure is the median over the repetitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import wrk
from bench.candidates import Candidate
from bench.procs import cpu_seconds
from bench.stats import median

ENDPOINTS = ("/_ping", "/containers/json")


@dataclass(frozen=True)
class GridSettings:
    concurrencies: tuple[int, ...]
    seconds: int
    repetitions: int
    warmup_seconds: int


def run(candidates: list[Candidate], settings: GridSettings, progress) -> list[dict]:
    rows = []
    for endpoint in ENDPOINTS:
        for cand in candidates:  # warm-up: connections, caches, the gateway's first-request paths
            wrk.run(cand.url + endpoint, 10, settings.warmup_seconds)
        for c in settings.concurrencies:
            runs: dict[str, list[wrk.WrkResult]] = {cand.name: [] for cand in candidates}
            cpu: dict[str, list[float]] = {cand.name: [] for cand in candidates}
            for _ in range(settings.repetitions):
                for cand in candidates:
                    before = cpu_seconds(cand.pid)
                    result = wrk.run(cand.url + endpoint, c, settings.seconds)
                    runs[cand.name].append(result)
                    cpu[cand.name].append((cpu_seconds(cand.pid) - before) / result.requests * 1e6)
            for cand in candidates:
                results = runs[cand.name]
                row = {
                    "workload": "http", "endpoint": endpoint, "concurrency": c, "candidate": cand.name,
                    "rps": median([r.rps for r in results]),
                    "p50_us": median([r.p50_us for r in results]),
                    "p99_us": median([r.p99_us for r in results]),
                    # CPU the process behind the port spent per request: steadier than req/s on a busy machine
                    "cpu_us_per_req": median(cpu[cand.name]),
                    "runs": [r.as_dict() for r in results],
                }
                rows.append(row)
                progress(f"GET {endpoint} c={c} {cand.name}: {row['rps']:.0f} req/s, "
                         f"p50 {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs, {row['cpu_us_per_req']:.0f} CPU-µs/req")
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    direct = {(r["endpoint"], r["concurrency"]): r for r in rows if r["candidate"] == "direct"}
    for row in rows:
        ref = direct.get((row["endpoint"], row["concurrency"]))
        if ref is None:
            continue
        row["rps_ratio"] = row["rps"] / ref["rps"]
        row["added_p50_us"] = row["p50_us"] - ref["p50_us"]
        row["added_p99_us"] = row["p99_us"] - ref["p99_us"]
