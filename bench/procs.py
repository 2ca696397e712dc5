"""Process facts the suite reports: resident set size now and at its peak (resettable)."""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> None:
    """Make VmHWM start again from the current RSS (``clear_refs`` 5, Linux ≥ 4.0)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # fields after the command name start at field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """CPU seconds a process has used so far, in user space and in the kernel (system calls, the network stack)."""

    user: float
    system: float


def cpu_times(pid: int) -> CpuTimes:
    """``cpu_seconds`` split into user and system time."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return CpuTimes(int(fields[11]) / tick, int(fields[12]) / tick)


@dataclass(frozen=True, slots=True)
class MachineTimes:
    """CPU seconds of the whole machine so far (every core, from /proc/stat): what all of them did, and idled."""

    total: float
    idle: float

    def busy_since(self, earlier: MachineTimes) -> float:
        """The share of the machine's CPU time that was busy since ``earlier`` (0..1)."""
        spent = self.total - earlier.total
        return 1 - (self.idle - earlier.idle) / spent if spent > 0 else 0.0


def machine_times() -> MachineTimes:
    """The first line of /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal (guest time is in user)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return MachineTimes(sum(fields) / tick, (fields[3] + fields[4]) / tick)
