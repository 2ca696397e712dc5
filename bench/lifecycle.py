"""``POST /containers/create`` + start + remove, in sequence: cycles per second through each candidate.

Candidates take turns cycle by cycle, so the daemon's slow drifts (its state grows and shrinks) hit
them alike; a candidate's rate is its cycles over the time its own cycles took.
"""

from __future__ import annotations

import time

from bench.candidates import Candidate
from bench.client import DockerApi

IMAGE = "ps-busybox:latest"


def _cycle(api: DockerApi, name: str) -> float:
    started = time.perf_counter()
    _, cid = api.create(name, IMAGE, ["true"])
    api.call("POST", f"/containers/{cid}/start", expect=(204,))
    api.remove(cid)
    return time.perf_counter() - started


def run(candidates: list[Candidate], cycles: int, prefix: str, progress) -> list[dict]:
    apis = {cand.name: DockerApi(cand.port) for cand in candidates}
    spent = {cand.name: 0.0 for cand in candidates}
    try:
        for cand in candidates:
            _cycle(apis[cand.name], f"{prefix}-warm-{cand.name}")
        for i in range(cycles):
            for cand in candidates:
                spent[cand.name] += _cycle(apis[cand.name], f"{prefix}-{cand.name}-{i}")
    finally:
        for api in apis.values():
            api.close()
    rows = [{"workload": "lifecycle", "candidate": c.name, "cycles": cycles, "cycles_per_s": cycles / spent[c.name]}
            for c in candidates]
    direct = next(r for r in rows if r["candidate"] == "direct")
    for row in rows:
        row["ratio"] = row["cycles_per_s"] / direct["cycles_per_s"]
        progress(f"create+start+remove {row['candidate']}: {row['cycles_per_s']:.1f} cycles/s")
    return rows
