"""Small helpers shared by the harness: bounded waits, unix-socket pings, process cleanup."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class HarnessError(RuntimeError):
    """The test harness could not set something up (not a product failure)."""


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1,
               what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_get_unix(socket_path: str, path: str = "/_ping", timeout: float = 2.0) -> tuple[int, bytes]:
    """One HTTP/1.1 GET over a unix socket, ``Connection: close``; returns (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2:
        raise OSError(f"bad HTTP reply from {socket_path}: {data[:200]!r}")
    return int(status_line[1]), body


def unix_ping(socket_path: str, timeout: float = 2.0) -> bool:
    """True when ``GET /_ping`` on the unix socket answers 200 ``OK``."""
    try:
        status, body = http_get_unix(socket_path, "/_ping", timeout)
    except OSError:
        return False
    return status == 200 and body.strip().endswith(b"OK")


def tail(path: Path | str, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def terminate(proc: subprocess.Popen, term_timeout: float = 10.0, kill_timeout: float = 5.0) -> None:
    """SIGTERM, a bounded wait, then SIGKILL and a bounded wait. Only touches ``proc`` itself."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=term_timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        proc.kill()
        proc.wait(timeout=kill_timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass


def pids_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (a unique temp dir path we created)."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def kill_pids(pids: list[int], timeout: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            try:
                # reap if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix``, deepest first."""
    prefix = prefix.rstrip("/")
    points = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        mp = fields[4].encode().decode("unicode_escape")
        if mp == prefix or mp.startswith(prefix + "/"):
            points.append(mp)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all_under(prefix: str) -> None:
    for _ in range(3):
        points = mounts_under(prefix)
        if not points:
            return
        for mp in points:
            subprocess.run(["umount", "-l", mp], capture_output=True, timeout=20)


def remove_tree(path: str) -> None:
    if not os.path.exists(path):
        return
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", path], capture_output=True, timeout=60)


@contextmanager
def file_lock(path: str, timeout: float = 900.0) -> Iterator[None]:
    """An inter-process lock (flock) with a bounded wait."""
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"could not lock {path} within {timeout:.0f}s")
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def apt_install(packages: list[str], timeout: float = 900.0) -> None:
    """``apt-get update`` then ``apt-get install -y`` (serialised between processes)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with file_lock("/tmp/powerstrip-apt.lock", timeout=timeout):
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise HarnessError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
