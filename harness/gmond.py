"""A real Ganglia gmond for tests (Debian ``ganglia-monitor``), on private loopback ports.

The config is written here rather than taken from ``gmond -t``: no multicast (a unicast UDP
channel to itself on 127.0.0.1), ``setuid = no`` (the test runs as root and keeps the files),
absolute module paths, and metrics collected every second and sent on every change
(``value_threshold = 0``), so a test sees the host's load within seconds instead of gmond's
default 20-90 s. Its tcp_accept_channel serves the metric XML that powerstrip reads.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .etcd import free_port
from .util import HarnessError, apt_install, remove_tree, tail, terminate, wait_until

MODULES = Path("/usr/lib/x86_64-linux-gnu/ganglia")
_METRIC_GROUPS = {
    "load_module:modload.so": ("load_one", "load_five", "load_fifteen"),
    "cpu_module:modcpu.so": ("cpu_idle", "cpu_user", "cpu_system", "cpu_num"),
    "mem_module:modmem.so": ("mem_free", "mem_total", "mem_cached", "swap_free"),
    "proc_module:modproc.so": ("proc_run", "proc_total"),
    "net_module:modnet.so": ("bytes_in", "bytes_out", "pkts_in", "pkts_out"),
    "disk_module:moddisk.so": ("disk_free", "disk_total"),
    "sys_module:modsys.so": (),
}


def ensure_gmond_installed() -> str:
    path = shutil.which("gmond") or (Path("/usr/sbin/gmond").exists() and "/usr/sbin/gmond") or None
    if path is None:
        apt_install(["ganglia-monitor"])
        path = shutil.which("gmond") or "/usr/sbin/gmond"
        if not Path(path).exists():
            raise HarnessError("gmond still missing after apt-get install ganglia-monitor")
    return path


def gmond_config(tcp_port: int, udp_port: int, every: int = 1) -> str:
    modules = "\n".join(
        f'  module {{\n    name = "{spec.split(":")[0]}"\n    path = "{MODULES / spec.split(":")[1]}"\n  }}'
        for spec in _METRIC_GROUPS
    )
    metrics = "\n".join(f'  metric {{\n    name = "{name}"\n    value_threshold = 0\n  }}'
                        for names in _METRIC_GROUPS.values() for name in names)
    return f"""globals {{
  daemonize = no
  setuid = no
  debug_level = 0
  mute = no
  deaf = no
  allow_extra_data = yes
  host_dmax = 0
  host_tmax = 20
  cleanup_threshold = 300
  gexec = no
  send_metadata_interval = 5
}}
cluster {{
  name = "powerstrip-test"
}}
udp_send_channel {{
  host = 127.0.0.1
  port = {udp_port}
}}
udp_recv_channel {{
  bind = 127.0.0.1
  port = {udp_port}
}}
tcp_accept_channel {{
  bind = 127.0.0.1
  port = {tcp_port}
}}
modules {{
  module {{
    name = "core_metrics"
  }}
{modules}
}}
collection_group {{
  collect_once = yes
  time_threshold = 5
  metric {{
    name = "cpu_num"
  }}
}}
collection_group {{
  collect_every = {every}
  time_threshold = {max(2, every * 2)}
{metrics}
}}
"""


class Gmond:
    """One gmond process; ``address`` is its XML port (``gmond://`` + address is the metrics source)."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.binary = ensure_gmond_installed()
        self.tcp_port = free_port()
        self.udp_port = free_port()
        self.start_timeout = start_timeout
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"

    @property
    def url(self) -> str:
        return f"gmond://{self.address}"

    def xml(self, timeout: float = 2.0) -> bytes:
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=timeout) as s:
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def _has(self, metric: str) -> bool:
        try:
            return f'NAME="{metric}"'.encode() in self.xml()
        except OSError:
            return False

    def start(self) -> "Gmond":
        self.dir = tempfile.mkdtemp(prefix="ps-gmond-")
        conf = Path(self.dir, "gmond.conf")
        conf.write_text(gmond_config(self.tcp_port, self.udp_port))
        log = open(Path(self.dir, "gmond.log"), "wb")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf), "-f"], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        try:
            wait_until(lambda: self.proc.poll() is None and self._has("load_one"), self.start_timeout, 0.2,
                       "gmond to report load_one")
        except TimeoutError:
            text = tail(Path(self.dir, "gmond.log"))
            self.stop()
            raise HarnessError(f"gmond did not come up:\n{text}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
        if self.dir:
            remove_tree(self.dir)
            self.dir = None

    def __enter__(self) -> "Gmond":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
