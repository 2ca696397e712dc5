"""Issue 3's measure: the latency a hook adds to ``POST /containers/create`` against the real daemon.

Side by side in one run: the daemon directly, powerstrip with no hook, with one in-process hook, one
HTTP protocol-v1 hook and one HTTP protocol-v2 hook (the same no-op SDK adapter every time). Each
round sends one create to every candidate in a shuffled order, so the daemon's drift is shared.

Two variants:
- ``hook_create``: real creates; each container is removed at once, outside the timing. The
  daemon's own create time (15 ms and more here, varying by milliseconds) dwarfs what a hook adds.
- ``hook_create_refused``: the same hooked request for an image that does not exist, so the daemon
  answers 404 within a fraction of a millisecond; the hook chain runs in full (body de-framed and
  canonicalised, hook called, request re-framed and forwarded). Its body is the docker CLI's (~2 KiB,
  examples/create-body.json). This isolates the added latency; the targets are
  judged on it.
"""

from __future__ import annotations

import random

from bench.canonical import sample_body
from bench.candidates import Candidate
from bench.client import DockerApi
from bench.stats import median, percentile

IMAGE = "ps-busybox:latest"
MISSING_IMAGE = "psb-missing-image:latest"
REFUSED_BODY = sample_body(MISSING_IMAGE)


def _create(api: DockerApi, name: str, refused: bool) -> float:
    if refused:  # the docker CLI's ~2 KiB create body, so the hook path includes its canonicalisation
        elapsed, _ = api.call("POST", f"/containers/create?name={name}", REFUSED_BODY, expect=(404,))
        return elapsed
    elapsed, cid = api.create(name, IMAGE, ["true"])
    api.remove(cid)
    return elapsed


def run(candidates: list[Candidate], samples: int, prefix: str, progress, refused: bool = False,
        reference: str = "powerstrip") -> list[dict]:
    apis = {cand.name: DockerApi(cand.port) for cand in candidates}
    times: dict[str, list[float]] = {cand.name: [] for cand in candidates}
    order = list(candidates)
    rng = random.Random(6)
    try:
        for i in range(-3, samples):  # three warm-up rounds, not recorded
            rng.shuffle(order)
            for cand in order:
                elapsed = _create(apis[cand.name], f"{prefix}-{cand.name}-{i + 3}", refused)
                if i >= 0:
                    times[cand.name].append(elapsed * 1e6)
    finally:
        for api in apis.values():
            api.close()
    rows = []
    direct, unhooked = times["direct"], times.get(reference)
    for cand in candidates:
        t = times[cand.name]
        row = {"workload": "hook_create_refused" if refused else "hook_create", "candidate": cand.name, "samples": samples,
               "p50_us": percentile(t, 50), "p99_us": percentile(t, 99),
               "added_p50_us": percentile(t, 50) - percentile(direct, 50),
               "added_p99_us": percentile(t, 99) - percentile(direct, 99),
               # the same round's difference, then its median: less sensitive to the daemon's drift
               "paired_added_us": median([a - b for a, b in zip(t, direct)])}
        if unhooked is not None:
            row["hook_p50_us"] = percentile(t, 50) - percentile(unhooked, 50)
            row["hook_paired_us"] = median([a - b for a, b in zip(t, unhooked)])
        rows.append(row)
        progress(f"{row['workload']} {cand.name}: p50 {row['p50_us'] / 1000:.2f} ms, p99 {row['p99_us'] / 1000:.2f} ms, "
                 f"added p50 {row['added_p50_us'] / 1000:+.2f} ms")
    return rows
