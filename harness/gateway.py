"""Start and stop powerstrip gateways (``python -m powerstrip serve``) for tests and benchmarks.

The gateway runs in a temp dir of its own as working directory, so that a ``./adapters.yml`` of the
repository is never picked up by accident; without ``config`` it is a pure pass-through. Its stdout
(where it prints ``export DOCKER_HOST=...`` once ready) and its stderr (the logs) go to files in that
dir; ``log_text()`` returns them.

``POWERSTRIP_TEST_GATEWAY_CMD`` (a shell-quoted command) replaces ``python -m powerstrip`` — handy to
run the pass-through tests against another relay.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from .util import HarnessError, remove_tree, terminate, unix_ping, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPORT_RE = re.compile(r"^export DOCKER_HOST=(\S+)\s*$", re.M)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """One powerstrip process. Use as a context manager or call start()/stop()."""

    def __init__(self, docker_url: str, config: str | os.PathLike | None = None,
                 extra_args: tuple[str, ...] | list[str] = (), tcp: bool = False,
                 log_level: str = "debug", state_dir: str | None = None,
                 start_timeout: float = 30.0, env: dict[str, str] | None = None,
                 command: list[str] | None = None, wait_ping: bool = True,
                 stop_timeout: float = 20.0) -> None:
        self.docker_url = docker_url
        # absolute: the gateway runs in a temp dir of its own
        self.config = os.path.abspath(config) if config is not None else None
        self.extra_args = list(extra_args)
        self.tcp_port = free_tcp_port() if tcp else None
        self.log_level = log_level
        self.state_dir = os.path.abspath(state_dir) if state_dir else None
        self.start_timeout = start_timeout
        self.extra_env = dict(env or {})
        self.wait_ping = wait_ping
        # the gateway gives open requests up to 10 s after SIGTERM: wait longer than that before SIGKILL
        self.stop_timeout = stop_timeout
        override = os.environ.get("POWERSTRIP_TEST_GATEWAY_CMD")
        self.command = command or (shlex.split(override) if override else [sys.executable, "-m", "powerstrip"])
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None
        self.exported_host: str | None = None
        self._final_logs = ("", "")

    @property
    def socket_path(self) -> str:
        assert self.dir, "gateway not started"
        return os.path.join(self.dir, "gw.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def tcp_url(self) -> str | None:
        return f"tcp://127.0.0.1:{self.tcp_port}" if self.tcp_port else None

    @property
    def stdout_path(self) -> str:
        return os.path.join(self.dir, "stdout.log")

    @property
    def stderr_path(self) -> str:
        return os.path.join(self.dir, "stderr.log")

    def argv(self) -> list[str]:
        argv = [*self.command, "serve", "--listen", self.url]
        if self.tcp_port:
            argv += ["--listen", self.tcp_url]
        argv += ["--docker", self.docker_url, "--log-level", self.log_level]
        if self.config:
            argv += ["--config", self.config]
        if self.state_dir:
            argv += ["--state-dir", self.state_dir]
        return argv + self.extra_args

    def stdout_text(self) -> str:
        if not self.dir:
            return self._final_logs[0]
        try:
            return Path(self.stdout_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self) -> str:
        """What the gateway logged (stderr); still available after stop()."""
        if not self.dir:
            return self._final_logs[1]
        try:
            return Path(self.stderr_path).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> "Gateway":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Gateway":
        self.dir = tempfile.mkdtemp(prefix="psg-", dir="/tmp")
        env = dict(os.environ)
        for var in ("POWERSTRIP_CONFIG", "DOCKER_HOST", "DOCKER_CONTEXT"):
            env.pop(var, None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        try:
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(self.argv(), cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, start_new_session=True)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        def exported() -> bool:
            if self.proc.poll() is not None:
                raise HarnessError(self._why("exited with %s before it was ready" % self.proc.returncode))
            m = EXPORT_RE.search(self.stdout_text())
            if m:
                self.exported_host = m.group(1)
                return True
            return False

        try:
            wait_until(exported, self.start_timeout, 0.05, "the 'export DOCKER_HOST=' line")
            if self.wait_ping:
                def pings() -> bool:
                    if self.proc.poll() is not None:
                        raise HarnessError(self._why("exited with %s" % self.proc.returncode))
                    return unix_ping(self.socket_path)
                wait_until(pings, self.start_timeout, 0.05, "/_ping through the gateway")
        except TimeoutError as e:
            raise HarnessError(self._why(str(e))) from None

    def _why(self, what: str) -> str:
        return (f"gateway {what}\ncommand: {shlex.join(self.argv())}\nstdout:\n{self.stdout_text()[-2000:]}\n"
                f"stderr tail:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, remove_dir: bool = True) -> int | None:
        """SIGTERM, bounded wait, SIGKILL. Returns the exit code. Keeps the logs readable until
        ``cleanup()`` (called here unless remove_dir is False)."""
        rc = None
        if self.proc is not None:
            terminate(self.proc, term_timeout=self.stop_timeout, kill_timeout=5.0)
            rc = self.proc.returncode
        if remove_dir:
            self.cleanup()
        return rc

    def cleanup(self) -> None:
        if self.dir:
            self._final_logs = (self.stdout_text(), self.log_text())
            remove_tree(self.dir)
            self.dir = None
