"""A private Docker daemon for tests, in its own network namespace and temp dir.

Each PrivateDockerd gets a fresh network namespace (so its docker0 bridge and iptables rules cannot
clash with another dockerd on the machine), its data-root and exec-root in a short temp dir under /tmp
(unix socket paths must stay below ~100 characters), and its own cgroup parent. ``stop()`` removes all
of it again: containers, processes, mounts, the namespace, the cgroups and the temp dir.

dockerd is started with ``nsenter --net=...`` and not ``ip netns exec``: the latter remounts /sys in a
private mount namespace, and dockerd then fails with "Devices cgroup isn't mounted".
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from .util import (
    HarnessError,
    apt_install,
    http_get_unix,
    kill_pids,
    pids_mentioning,
    remove_tree,
    tail,
    terminate,
    unix_ping,
    unmount_all_under,
    wait_until,
)

APT_PACKAGES = ["docker.io", "iproute2", "iptables"]


def ensure_dockerd_installed() -> str:
    """Path of dockerd; installs Debian's docker.io when it is missing."""
    path = shutil.which("dockerd")
    if path is None:
        apt_install(APT_PACKAGES)
        path = shutil.which("dockerd")
        if path is None:
            raise HarnessError("dockerd still missing after apt-get install docker.io")
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            apt_install(APT_PACKAGES)
            break
    return path


class PrivateDockerd:
    """A dockerd of our own. Use as a context manager or call start()/stop()."""

    def __init__(self, start_timeout: float = 90.0, extra_args: tuple[str, ...] = (),
                 storage_driver: str | None = None) -> None:
        self.start_timeout = start_timeout
        self.extra_args = tuple(extra_args)
        self.storage_driver = storage_driver or os.environ.get("POWERSTRIP_TEST_STORAGE_DRIVER")
        suffix = secrets.token_hex(4)
        self.netns = f"psd-{suffix}"
        self.cgroup_parent = f"/psd-{suffix}"
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None
        self._netns_created = False

    # -- paths ---------------------------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        assert self.dir, "dockerd not started"
        return os.path.join(self.dir, "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> str:
        assert self.dir
        return os.path.join(self.dir, "dockerd.log")

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this daemon."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.url
        env.update(extra)
        return env

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines) if self.dir else ""

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "PrivateDockerd":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "PrivateDockerd":
        if os.geteuid() != 0:
            raise HarnessError("a private dockerd needs root")
        dockerd = ensure_dockerd_installed()
        self.dir = tempfile.mkdtemp(prefix="psd-", dir="/tmp")
        try:
            self._start(dockerd)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, dockerd: str) -> None:
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True, timeout=30)
        self._netns_created = True
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True,
                       capture_output=True, timeout=30)
        d = self.dir
        cmd = [
            "nsenter", f"--net=/var/run/netns/{self.netns}",
            dockerd,
            "--host", f"unix://{self.socket_path}",
            "--data-root", f"{d}/root",
            "--exec-root", f"{d}/exec",
            "--pidfile", f"{d}/dockerd.pid",
            "--cgroup-parent", self.cgroup_parent,
            "--config-file", self._write_config(),
        ]
        if self.storage_driver:
            cmd += ["--storage-driver", self.storage_driver]
        cmd += list(self.extra_args)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"dockerd exited with {self.proc.returncode} during start; log tail:\n{self.log_tail()}")
            return unix_ping(self.socket_path)

        try:
            wait_until(ready, self.start_timeout, 0.2, "dockerd /_ping")
        except TimeoutError as e:
            raise HarnessError(f"{e}; dockerd log tail:\n{self.log_tail()}") from None

    def restart(self) -> None:
        """Stop dockerd and start it again with the same data and arguments (as a host reboot would).

        Also the cure for state only dockerd's start-up repairs, e.g. a network's drifted endpoint count
        (moby#42119)."""
        assert self.proc is not None and self.dir, "dockerd not started"
        argv = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        terminate(self.proc, term_timeout=40.0)
        wait_until(lambda: not Path(self.dir, "dockerd.pid").exists(), 30, 0.1, "dockerd's pid file to go")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/var/run/netns/{self.netns}", *[a.decode() for a in argv]],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        wait_until(lambda: unix_ping(self.socket_path), 60, 0.2, "dockerd /_ping after the restart")

    def _write_config(self) -> str:
        # An empty daemon.json of our own, so /etc/docker/daemon.json (if any) cannot interfere.
        path = os.path.join(self.dir, "daemon.json")
        Path(path).write_text(json.dumps({}))
        return path

    def _remove_all_containers(self, timeout: float = 60.0) -> None:
        """Best effort: force-remove every container, so the shutdown has nothing to wait for."""
        try:
            import docker  # the SDK is a test dependency
        except ImportError:  # pragma: no cover
            return
        try:
            client = docker.DockerClient(base_url=self.url, timeout=timeout)
            try:
                for c in client.containers.list(all=True):
                    try:
                        c.remove(force=True)
                    except Exception:
                        pass
            finally:
                client.close()
        except Exception:
            pass

    def stop(self) -> None:
        """Stop dockerd and remove everything it had. Safe to call more than once."""
        if self.proc is not None:
            if self.proc.poll() is None and unix_ping(self.socket_path):
                self._remove_all_containers()
            terminate(self.proc, term_timeout=40.0, kill_timeout=10.0)
            self.proc = None
        if self.dir:
            # containerd and its shims were started by our dockerd: their command lines name our dir.
            leftovers = pids_mentioning(self.dir)
            if leftovers:
                kill_pids(leftovers)
            unmount_all_under(self.dir)
        self._remove_cgroups()
        if self._netns_created:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True, timeout=30)
            self._netns_created = False
        if self.dir:
            remove_tree(self.dir)
            self.dir = None

    def _remove_cgroups(self) -> None:
        root = Path("/sys/fs/cgroup")
        name = self.cgroup_parent.strip("/")
        candidates = [root / name] + ([p / name for p in root.iterdir()] if root.is_dir() else [])
        for top in candidates:
            if not top.is_dir():
                continue
            # rmdir deepest first; cgroup dirs only go away when empty of processes
            for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                              reverse=True):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                top.rmdir()
            except OSError:
                pass

    # -- conveniences --------------------------------------------------------------------------
    def api_get(self, path: str) -> tuple[int, bytes]:
        return http_get_unix(self.socket_path, path, timeout=10)
