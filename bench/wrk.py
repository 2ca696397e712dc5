"""The load generator for request/response workloads: wrk (C, epoll, keep-alive connections).

A Lua ``done`` hook prints the run's figures as one JSON line (latencies in microseconds, from wrk's
HdrHistogram-style recorder), so nothing is scraped from the human output.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPORT_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, "p50_us": %.1f, "p90_us": %.1f, '
    .. '"p99_us": %.1f, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_us: float
    p90_us: float
    p99_us: float
    requests: int
    errors: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class WrkError(RuntimeError):
    pass


def _script() -> str:
    path = Path(tempfile.gettempdir(), "powerstrip-bench-report.lua")
    if not path.exists() or path.read_text() != REPORT_LUA:
        path.write_text(REPORT_LUA)
    return str(path)


def run(url: str, connections: int, seconds: int, threads: int | None = None) -> WrkResult:
    """One wrk run; every request must succeed with a 2xx (a failed one makes the figure meaningless)."""
    threads = threads or min(2, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", _script(), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise WrkError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    line = next((l for l in done.stdout.splitlines() if l.startswith('{"requests"')), None)
    if line is None:
        raise WrkError(f"no report from wrk: {done.stdout[-500:]}")
    data = json.loads(line)
    if data["errors"] or data["non_2xx"]:
        raise WrkError(f"{url} c={connections}: {data['errors']} socket errors, {data['non_2xx']} non-2xx "
                       f"of {data['requests']} requests")
    return WrkResult(rps=data["requests"] / (data["duration_us"] / 1e6), p50_us=data["p50_us"],
                     p90_us=data["p90_us"], p99_us=data["p99_us"], requests=data["requests"], errors=0)
