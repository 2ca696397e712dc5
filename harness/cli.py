"""Run the docker CLI against a given DOCKER_HOST, with a timeout; and run commands under a pty.

Two CLIs are on the machine: Debian's 20.10 (/usr/bin/docker) and a newer one (/usr/local/bin/docker).
``DOCKER_CLIS`` lists those that exist; ``DEBIAN_CLI`` is the default.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pexpect

DEBIAN_CLI = "/usr/bin/docker"
NEW_CLI = "/usr/local/bin/docker"
DOCKER_CLIS = [p for p in (DEBIAN_CLI, NEW_CLI) if os.path.exists(p)] or [shutil.which("docker") or "docker"]
DEFAULT_CLI = DOCKER_CLIS[0]

# One empty client config dir per process: no ~/.docker contexts, credential helpers or hints.
_CONFIG_DIR: str | None = None


def cli_config_dir() -> str:
    global _CONFIG_DIR
    if _CONFIG_DIR is None or not os.path.isdir(_CONFIG_DIR):
        _CONFIG_DIR = tempfile.mkdtemp(prefix="psc-", dir="/tmp")
        atexit.register(cleanup_cli_config)
    return _CONFIG_DIR


def cleanup_cli_config() -> None:
    global _CONFIG_DIR
    if _CONFIG_DIR:
        shutil.rmtree(_CONFIG_DIR, ignore_errors=True)
        _CONFIG_DIR = None


@dataclass
class Result:
    rc: int
    out: str
    err: str
    argv: list[str] = field(default_factory=list)
    host: str = ""

    def __str__(self) -> str:
        return (f"$ DOCKER_HOST={self.host} {' '.join(self.argv)}\nexit {self.rc}\n--- stdout\n{self.out}"
                f"\n--- stderr\n{self.err}")


class CommandTimeout(AssertionError):
    pass


def docker_env(host: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOCKER_") and k not in ("BUILDKIT_PROGRESS",)}
    env.update(DOCKER_HOST=host, DOCKER_CONFIG=cli_config_dir(), DOCKER_CLI_HINTS="false",
               DOCKER_BUILDKIT="0", DOCKER_CLI_EXPERIMENTAL="disabled", TERM=env.get("TERM", "xterm"))
    env.update(extra)
    return env


def run_docker(host: str, *args: str, docker: str = DEFAULT_CLI, timeout: float = 60.0,
               input: bytes | str | None = None, env: dict[str, str] | None = None,
               cwd: str | None = None) -> Result:
    """Run ``docker ARGS`` with DOCKER_HOST=host; returns Result(rc, out, err) (text, undecodable
    bytes replaced). Raises CommandTimeout (with what was printed so far) after ``timeout``."""
    argv = [docker, *args]
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            env=docker_env(host, **(env or {})), start_new_session=True)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate(timeout=10)
        raise CommandTimeout(f"timed out after {timeout}s: DOCKER_HOST={host} {' '.join(argv)}\n"
                             f"stdout so far:\n{out.decode(errors='replace')[-3000:]}\n"
                             f"stderr so far:\n{err.decode(errors='replace')[-3000:]}") from None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), argv, host)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Streaming:
    """A long-running docker command (``logs -f``, ``events``) read line by line with deadlines."""

    def __init__(self, host: str, *args: str, docker: str = DEFAULT_CLI, env: dict[str, str] | None = None):
        self.argv = [docker, *args]
        self.host = host
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=docker_env(host, **(env or {})),
                                     start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buf = b""
        self.lines: list[str] = []

    def _pump(self, deadline: float) -> bool:
        import select
        remaining = max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([self.proc.stdout], [], [], min(remaining, 0.2))
        if not r:
            return True
        chunk = self.proc.stdout.read()
        if not chunk:
            return False  # EOF
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        self.lines += [c.decode(errors="replace") for c in complete]
        return True

    def wait_lines(self, n: int, timeout: float, match: str | None = None) -> list[str]:
        """Wait until ``n`` lines (containing ``match`` if given) were printed."""
        deadline = time.monotonic() + timeout

        def matching() -> list[str]:
            return [l for l in self.lines if match is None or match in l]

        while len(matching()) < n:
            if time.monotonic() >= deadline:
                raise CommandTimeout(f"{' '.join(self.argv)} via {self.host}: wanted {n} lines"
                                     f"{' with ' + repr(match) if match else ''} in {timeout}s, got:\n"
                                     + "\n".join(self.lines[-30:]) + f"\nstderr: {self.stderr_so_far()}")
            if not self._pump(deadline):
                if len(matching()) < n:
                    raise AssertionError(f"{' '.join(self.argv)} via {self.host} ended early "
                                         f"(rc={self.proc.wait(timeout=5)}); lines:\n" + "\n".join(self.lines)
                                         + f"\nstderr: {self.stderr_so_far()}")
        return matching()

    def stderr_so_far(self) -> str:
        return ""  # read at stop(); reading a live pipe here could block

    def stop(self) -> tuple[int, str]:
        """Kill the command (it is endless) and return (returncode, stderr)."""
        if self.proc.poll() is None:
            _kill_group(self.proc)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        err = b""
        try:
            os.set_blocking(self.proc.stderr.fileno(), False)
            err = self.proc.stderr.read() or b""
        except (OSError, ValueError):
            pass
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return self.proc.returncode, err.decode(errors="replace")

    def __enter__(self) -> "Streaming":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def spawn_pty(host: str, *args: str, docker: str = DEFAULT_CLI, timeout: float = 30.0,
              env: dict[str, str] | None = None, dimensions: tuple[int, int] = (24, 80)) -> pexpect.spawn:
    """``docker ARGS`` under a pseudo-terminal (pexpect). ``timeout`` is the default expect timeout.
    Close it with ``close_pty``."""
    child = pexpect.spawn(docker, list(args), env=docker_env(host, **(env or {})), timeout=timeout,
                          encoding="utf-8", codec_errors="replace", dimensions=dimensions)
    return child


def close_pty(child: pexpect.spawn, timeout: float = 15.0) -> int | None:
    """Wait (bounded) for the pty child to end; force it if needed. Returns its exit status."""
    deadline = time.monotonic() + timeout
    while child.isalive() and time.monotonic() < deadline:
        try:
            child.expect(pexpect.EOF, timeout=max(0.1, deadline - time.monotonic()))
        except pexpect.TIMEOUT:
            break
        except pexpect.EOF:
            break
    if child.isalive():
        child.terminate(force=True)
    child.close(force=True)
    return child.exitstatus if child.exitstatus is not None else (
        -child.signalstatus if child.signalstatus is not None else None)
