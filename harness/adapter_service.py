"""``powerstrip adapter run MODULE:ATTR`` as a real process, for tests that call an SDK adapter over HTTP."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from .gateway import REPO_ROOT, free_tcp_port
from .util import HarnessError, tail, terminate, wait_until


class AdapterService:
    """One adapter service on 127.0.0.1; ``url`` is where the gateway's config points."""

    def __init__(self, target: str, extra_args: tuple[str, ...] = ()) -> None:
        self.target = target
        self.extra_args = extra_args
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._log = Path(tempfile.mkstemp(prefix="ps-adapter-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def _pings(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/ping", timeout=1) as reply:
                return reply.read() == b"pong"
        except OSError:
            return False

    def start(self) -> "AdapterService":
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "powerstrip", "adapter", "run", self.target,
                 "--listen", f"tcp://127.0.0.1:{self.port}", *self.extra_args],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: self._pings() or self.proc.poll() is not None, timeout=20, what=self.target)
            if self.proc.poll() is not None:
                raise HarnessError(f"adapter service {self.target} exited:\n{tail(self._log)}")
        except (TimeoutError, HarnessError) as exc:
            log = tail(self._log)
            self.stop()
            raise HarnessError(f"adapter service {self.target} did not start: {exc}\n{log}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> "AdapterService":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
