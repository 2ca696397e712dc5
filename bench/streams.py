"""Big bodies and many open streams: a 1 GiB ``archive``, the ``logs`` of a fast writer, idle ``events``.

Bodies are fetched with curl (C, writes to /dev/null), the same client for every candidate; the
gateway's peak RSS is read from ``VmHWM`` after resetting it before each transfer, so a gateway that
buffered the stream would show it in MiB.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass

import docker

from bench.candidates import Candidate
from bench.procs import peak_rss_mib, reset_peak_rss, rss_mib
from bench.stats import median

MIB = 1024 * 1024
IMAGE = "ps-busybox:latest"


@dataclass(frozen=True)
class StreamSettings:
    archive_mib: int
    logs_mib: int
    repetitions: int
    idle_streams: int


@dataclass
class Fixtures:
    """Containers the stream workloads read from (made once, removed by ``remove``)."""

    archive_container: str
    logs_container: str
    archive_bytes: int
    logs_bytes: int


def prepare(docker_url: str, prefix: str, settings: StreamSettings, timeout: float = 300) -> Fixtures:
    """A stopped container holding a file of ``archive_mib`` and one that logged ``logs_mib``."""
    client = docker.DockerClient(base_url=docker_url, timeout=timeout)
    try:
        line = "x" * 999
        jobs = {
            f"{prefix}-archive": f"dd if=/dev/zero of=/data/big bs=1M count={settings.archive_mib} 2>/dev/null",
            f"{prefix}-logs": f"yes {line} | head -c {settings.logs_mib * MIB}",
        }
        containers = [client.containers.run(IMAGE, ["sh", "-c", cmd], name=name, detach=True)
                      for name, cmd in jobs.items()]
        for c in containers:
            status = c.wait(timeout=timeout)["StatusCode"]
            if status != 0:
                raise RuntimeError(f"fixture container {c.name} exited with {status}: {c.logs(tail=5)!r}")
        return Fixtures(f"{prefix}-archive", f"{prefix}-logs", settings.archive_mib * MIB, settings.logs_mib * MIB)
    finally:
        client.close()


def _curl(url: str, timeout: float) -> tuple[int, float]:
    """(bytes received, seconds) for one GET; anything but a complete 200 is an error."""
    done = subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"curl {url}: {done.stderr.strip()}")
    size, seconds = done.stdout.split()
    return int(size), float(seconds)


def transfers(candidates: list[Candidate], fixtures: Fixtures, settings: StreamSettings, progress) -> list[dict]:
    paths = {
        "archive": (f"/containers/{fixtures.archive_container}/archive?path=/data/big", fixtures.archive_bytes),
        "logs": (f"/containers/{fixtures.logs_container}/logs?stdout=1&stderr=1", fixtures.logs_bytes),
    }
    rows = []
    for kind, (path, expected) in paths.items():
        samples: dict[str, list[tuple[int, float, float]]] = {c.name: [] for c in candidates}
        before: dict[str, float] = {}
        for cand in candidates:
            before[cand.name] = rss_mib(cand.pid)  # before any transfer: the warm-up counts too
            reset_peak_rss(cand.pid)
            _curl(cand.url + path, 600)  # warm-up: page cache, the daemon's first read
            samples[cand.name].append((0, 0.0, peak_rss_mib(cand.pid)))
        for _ in range(settings.repetitions):
            for cand in candidates:
                reset_peak_rss(cand.pid)
                size, seconds = _curl(cand.url + path, 600)
                if size < expected:
                    raise RuntimeError(f"{kind} through {cand.name}: {size} bytes, expected at least {expected}")
                samples[cand.name].append((size, seconds, peak_rss_mib(cand.pid)))
        for cand in candidates:
            got = samples[cand.name]
            peak = max(rss for _, _, rss in got)
            got = [sample for sample in got if sample[0]]  # without the warm-up
            row = {
                "workload": kind, "candidate": cand.name, "bytes": got[0][0],
                "mib_per_s": median([size / seconds / MIB for size, seconds, _ in got]),
                "rss_before_mib": before[cand.name], "peak_rss_mib": peak,
            }
            rows.append(row)
            progress(f"{kind} {row['bytes'] / MIB:.0f} MiB {cand.name}: {row['mib_per_s']:.0f} MiB/s, "
                     f"peak RSS {row['peak_rss_mib']:.1f} MiB")
    direct = {r["workload"]: r for r in rows if r["candidate"] == "direct"}
    for row in rows:
        row["ratio"] = row["mib_per_s"] / direct[row["workload"]]["mib_per_s"]
    return rows


async def _hold_events(port: int, count: int, timeout: float) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    request = b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n"
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened.append((reader, writer))
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"events stream refused: {head[:100]!r}")

    async with asyncio.timeout(timeout):
        for start in range(0, count, 100):  # batches: no accept-queue overflow on the listener
            await asyncio.gather(*(one() for _ in range(min(100, count - start))))
    return opened


async def _idle_streams(cand: Candidate, count: int, hold: float) -> dict:
    before = rss_mib(cand.pid)
    streams: list = []
    try:
        streams = await _hold_events(cand.port, count, 120)
        await asyncio.sleep(hold)
        held = rss_mib(cand.pid)
        alive = sum(1 for reader, _ in streams if not reader.at_eof())
    finally:
        for _, writer in streams:
            writer.close()
    if alive != count:
        raise RuntimeError(f"{cand.name}: only {alive} of {count} idle events streams stayed open")
    return {"workload": "idle_events", "candidate": cand.name, "streams": count, "rss_before_mib": before,
            "rss_mib": held, "per_stream_kib": (held - before) * 1024 / count}


def idle_events(candidates: list[Candidate], settings: StreamSettings, progress, hold: float = 2.0) -> list[dict]:
    """``settings.idle_streams`` open ``GET /events`` per candidate; the RSS of the process behind it."""
    rows = []
    for cand in candidates:
        row = asyncio.run(_idle_streams(cand, settings.idle_streams, hold))
        rows.append(row)
        progress(f"{row['streams']} idle events streams {cand.name}: RSS {row['rss_before_mib']:.1f} → "
                 f"{row['rss_mib']:.1f} MiB ({row['per_stream_kib']:.1f} KiB/stream)")
        time.sleep(1.0)  # let the daemon forget the closed streams
    return rows
