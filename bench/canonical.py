"""Issue 10's measure: what decoding a hooked body the way dockerd does costs (``powerstrip.canonical``).

In this process, on one core: ``canonicalize`` on ``examples/create-body.json`` (a docker CLI create body
of about 2 KiB), beside plain ``json.loads`` of the same text for scale; wall time, and the thread's CPU
time, which the machine's other load does not inflate (the target is judged on it). The end-to-end figure is the hooked
create of ``bench/hooks.py``, which sends the same body.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.stats import percentile
from powerstrip.canonical import canonicalize

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "create-body.json"


def sample_body(image: str | None = None) -> dict:
    """The sample create body as an object (with another image, for the refused variant)."""
    body = json.loads(SAMPLE.read_text())
    if image is not None:
        body["Image"] = image
    return body


def _timings(call, samples: int, clock=time.perf_counter_ns) -> list[float]:
    out = []
    for _ in range(samples):
        started = clock()
        call()
        out.append((clock() - started) / 1000)
    return out


def run(samples: int, progress) -> list[dict]:
    text = SAMPLE.read_text()
    progress(f"canonicalising a {len(text)}-byte create body {samples} times")
    for _ in range(200):  # warm-up
        canonicalize("POST", "/v1.41/containers/create", text)
    def call() -> None:
        canonicalize("POST", "/v1.41/containers/create", text)

    wall = _timings(call, samples)
    cpu = _timings(call, samples, time.thread_time_ns)  # what the machine's other load cannot inflate
    loads = _timings(lambda: json.loads(text), samples, time.thread_time_ns)
    return [{"workload": "canonical", "candidate": "canonicalize", "body_bytes": len(text), "samples": samples,
             "p50_us": percentile(wall, 50), "p99_us": percentile(wall, 99),
             "cpu_p50_us": percentile(cpu, 50), "json_loads_cpu_p50_us": percentile(loads, 50)}]
