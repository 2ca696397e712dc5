"""Where a host's metrics come from: the built-in psutil collector, or a Ganglia gmond's XML.

Both give Ganglia's metric names and units (``load_one``; ``cpu_idle`` in %; ``mem_free`` in KB;
``bytes_in`` in bytes/s; ``disk_free`` in GB; ``proc_run``), so a rule reads the same with either.
``read`` blocks (the monitor runs it in a thread) and never raises: a failure is a ``Reading``
with ``error`` set, which the evaluator turns into a WARN and no action.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

import psutil
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from powerstrip.adapters.hostaware.model import InvalidRule, Reading

GMOND_PORT = 8649
GMOND_TIMEOUT = 3.0  # connect + the whole XML document
GMOND_MAX_BYTES = 16 * 1024 * 1024  # a gmond aggregating a large cluster answers a few MB


class MetricsSource(Protocol):
    url: str

    def read(self) -> Reading: ...


class PsutilCollector:
    """This host's metrics by psutil; rates (cpu %, bytes/s, packets/s) are over the time since the last read."""

    url = "builtin"

    def __init__(self) -> None:
        psutil.cpu_times_percent(interval=None)  # the first call only sets the baseline
        self._net = self._net_counters()
        self._net_time = time.monotonic()

    @staticmethod
    def _net_counters() -> tuple[int, int, int, int]:
        """Bytes/packets in and out of every interface but loopback (as gmond counts them)."""
        totals = [0, 0, 0, 0]
        for name, c in psutil.net_io_counters(pernic=True).items():
            if name != "lo":
                for i, v in enumerate((c.bytes_recv, c.bytes_sent, c.packets_recv, c.packets_sent)):
                    totals[i] += v
        return totals[0], totals[1], totals[2], totals[3]

    def read(self) -> Reading:
        now = time.time()
        try:
            return Reading(now, self._collect())
        except (OSError, psutil.Error, ValueError) as exc:
            return Reading(now, error=f"built-in collector: {exc}")

    def _collect(self) -> dict[str, float]:
        load = psutil.getloadavg()
        cpu = psutil.cpu_times_percent(interval=None)
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        metrics = {
            "load_one": load[0], "load_five": load[1], "load_fifteen": load[2],
            "cpu_num": float(psutil.cpu_count() or 1), "cpu_idle": cpu.idle, "cpu_user": cpu.user,
            "cpu_system": cpu.system, "cpu_nice": cpu.nice, "cpu_wio": getattr(cpu, "iowait", 0.0),
            "cpu_steal": getattr(cpu, "steal", 0.0),
            "mem_total": mem.total / 1024, "mem_free": mem.free / 1024, "mem_cached": getattr(mem, "cached", 0) / 1024,
            "mem_buffers": getattr(mem, "buffers", 0) / 1024, "mem_shared": getattr(mem, "shared", 0) / 1024,
            "swap_total": swap.total / 1024, "swap_free": swap.free / 1024,
        }
        counters, at = self._net_counters(), time.monotonic()
        elapsed = at - self._net_time
        if elapsed > 0:
            for name, new, old in zip(("bytes_in", "bytes_out", "pkts_in", "pkts_out"), counters, self._net):
                metrics[name] = max(0, new - old) / elapsed
        self._net, self._net_time = counters, at
        metrics.update(_disk())
        metrics.update(_procs())
        return metrics


def _disk() -> dict[str, float]:
    """``disk_total``/``disk_free`` in GB over the local filesystems, each device once (as gmond sums them)."""
    seen: set[str] = set()
    total = free = 0
    for part in psutil.disk_partitions(all=False):
        if part.device in seen:
            continue
        seen.add(part.device)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        total += usage.total
        free += usage.free
    return {"disk_total": total / 1e9, "disk_free": free / 1e9} if seen else {}


def _procs() -> dict[str, float]:
    """``proc_run`` (runnable now) and ``proc_total`` from /proc/loadavg: ``0.1 0.2 0.3 RUN/TOTAL LAST``."""
    with open("/proc/loadavg", encoding="ascii") as f:
        running, _, total = f.read().split()[3].partition("/")
    return {"proc_run": float(running), "proc_total": float(total)}


@dataclass(frozen=True, slots=True)
class GmondHost:
    name: str
    ip: str
    age: float  # seconds since gmond last heard from the host (TN)
    tmax: float
    metrics: dict[str, float]


class GmondSource:
    """``gmond://HOST:PORT``: gmond's XML (its tcp_accept_channel), the metrics of one ``<HOST>`` in it.

    A gmond of a multicast cluster reports every member: the host read is the one named ``host_name``
    (or with that IP); a gmond that reports one host only is taken as this host whatever its name
    (gmond names itself by reverse DNS, often ``localhost``).
    """

    def __init__(self, url: str, host_name: str, timeout: float = GMOND_TIMEOUT) -> None:
        self.url = url
        self.address = parse_gmond_url(url)
        self.host_name = host_name
        self.timeout = timeout

    def read(self) -> Reading:
        now = time.time()
        try:
            hosts = parse_gmond_xml(self._fetch())
        except (OSError, ValueError) as exc:
            return Reading(now, error=f"gmond {self.address[0]}:{self.address[1]}: {exc}")
        host = self._pick(hosts)
        if host is None:
            names = ", ".join(h.name for h in hosts) or "none"
            return Reading(now, error=f"gmond {self.address[0]}:{self.address[1]} reports no host {self.host_name!r} "
                                      f"(hosts: {names})")
        if host.tmax and host.age > 4 * host.tmax:
            return Reading(now, error=f"gmond last heard from {host.name} {host.age:.0f}s ago")
        return Reading(now, host.metrics)

    def _pick(self, hosts: list[GmondHost]) -> GmondHost | None:
        for host in hosts:
            if self.host_name in (host.name, host.ip) or host.name.split(".")[0] == self.host_name:
                return host
        return hosts[0] if len(hosts) == 1 else None

    def _fetch(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        chunks, size = [], 0
        with socket.create_connection(self.address, timeout=self.timeout) as conn:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no complete answer within {self.timeout:g}s")
                conn.settimeout(left)
                chunk = conn.recv(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > GMOND_MAX_BYTES:
                    raise ValueError(f"answer larger than {GMOND_MAX_BYTES} bytes")
                chunks.append(chunk)
        return b"".join(chunks)


def parse_gmond_url(url: str) -> tuple[str, int]:
    """``gmond://HOST[:PORT]`` → (HOST, PORT); the port defaults to gmond's 8649."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port or GMOND_PORT
    except ValueError:
        raise InvalidRule(f"invalid metrics source {url!r}: bad port") from None
    if parts.scheme != "gmond" or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidRule(f"invalid metrics source {url!r}: expected builtin or gmond://HOST[:PORT]")
    return parts.hostname, port


def parse_gmond_xml(data: bytes) -> list[GmondHost]:
    """The hosts of a gmond (or gmetad) XML document with their numeric metrics; raises ValueError.

    defusedxml refuses entity tricks (billion laughs, external entities); gmond's inline DTD,
    which declares no entity, is allowed.
    """
    if not data.strip():
        raise ValueError("empty answer (is it a gmond tcp_accept_channel?)")
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise ValueError(f"not gmond XML: {exc}") from None
    if root.tag != "GANGLIA_XML":
        raise ValueError(f"not gmond XML: the document is <{root.tag}>, not <GANGLIA_XML>")
    return [_host(element) for element in root.iter("HOST")]


def _host(element: Element) -> GmondHost:
    metrics = {}
    for metric in element.iter("METRIC"):
        name, value = metric.get("NAME"), metric.get("VAL")
        if not name or value is None or metric.get("TYPE") == "string":
            continue
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return GmondHost(element.get("NAME", ""), element.get("IP", ""), _float(element.get("TN")),
                     _float(element.get("TMAX")), metrics)


def _float(text: str | None) -> float:
    try:
        return float(text) if text is not None else 0.0
    except ValueError:
        return 0.0


@dataclass(frozen=True, slots=True)
class MetricsSourceSettings:
    """Where ``builtin:hostaware`` reads this host's metrics (``--metrics-source``), checked when made."""

    url: str | None = None  # None: the built-in collector; else gmond://HOST[:PORT]

    def __post_init__(self) -> None:
        if self.url not in (None, "", "builtin"):
            parse_gmond_url(self.url)  # raises InvalidRule


def open_source(url: str | None, host_name: str) -> MetricsSource:
    """``None``/``builtin`` → the psutil collector; ``gmond://HOST:PORT`` → that gmond."""
    if url in (None, "", "builtin"):
        return PsutilCollector()
    parse_gmond_url(url)
    return GmondSource(url, host_name)
