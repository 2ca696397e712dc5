"""Every spelling we know of each host power, as container-create bodies (canonical field names), with what
dockerd's inspect shows when it granted the power. Shared by the unit tests (the policy refuses each) and the
integration tests (dockerd itself accepts each, and through the gateway none is created)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spelling:
    power: str
    label: str
    host: dict[str, Any]  # HostConfig fields
    config: dict[str, Any]  # top-level Config fields
    granted: Callable[[dict[str, Any]], bool]  # on dockerd's container inspect

    @property
    def id(self) -> str:
        return f"{self.power}:{self.label}"

    def body(self, image: str) -> dict[str, Any]:
        return {"Image": image, "Cmd": ["true"], **self.config, "HostConfig": dict(self.host)}


def _hc(inspect: dict[str, Any]) -> dict[str, Any]:
    return inspect["HostConfig"]


def _mount_sources(inspect: dict[str, Any]) -> list[str]:
    sources = [m.get("Source", "") for m in _hc(inspect).get("Mounts") or []] + \
        [b.split(":")[0] for b in _hc(inspect).get("Binds") or []]
    return [posixpath.normpath(source) for source in sources]


def _caps(inspect: dict[str, Any]) -> list[str]:
    return [c.upper().removeprefix("CAP_") for c in _hc(inspect).get("CapAdd") or []]


def _s(power: str, label: str, granted: Callable[[dict[str, Any]], bool], host: dict[str, Any] | None = None,
       **config: Any) -> Spelling:
    return Spelling(power, label, host or {}, config, granted)


SPELLINGS: tuple[Spelling, ...] = (
    _s("privileged", "true", lambda i: _hc(i)["Privileged"] is True, {"Privileged": True}),
    *(_s(f"host-{ns}", f"{field}={value}", lambda i, f=field: _hc(i)[f].lower() == "host", {field: value})
      for ns, field, value in (("network", "NetworkMode", "host"), ("pid", "PidMode", "host"),
                               ("ipc", "IpcMode", "host"), ("uts", "UTSMode", "host"),
                               ("userns", "UsernsMode", "host"), ("cgroup", "CgroupnsMode", "host"))),
    *(_s("join", f"{field}=container", lambda i, f=field: _hc(i)[f].startswith("container:"),
         {field: "container:{victim}"}) for field in ("NetworkMode", "PidMode", "IpcMode")),
    *(_s("cap-add", spelling, lambda i: "SYS_ADMIN" in _caps(i) or "ALL" in _caps(i), {"CapAdd": [spelling]})
      for spelling in ("SYS_ADMIN", "CAP_SYS_ADMIN", "cap_sys_admin", "sys_admin", "Cap_Sys_Admin", "ALL", "all")),
    _s("devices", "Devices", lambda i: bool(_hc(i)["Devices"]),
       {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}]}),
    _s("devices", "DeviceCgroupRules", lambda i: bool(_hc(i)["DeviceCgroupRules"]),
       {"DeviceCgroupRules": ["c *:* rwm"]}),
    _s("device-requests", "gpus", lambda i: bool(_hc(i)["DeviceRequests"]),
       {"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]}),
    *(_s("bind", label, lambda i: any(s.startswith("/etc") for s in _mount_sources(i)), host)
      for label, host in (
          ("Binds src:dst", {"Binds": ["/etc:/host-etc"]}),
          ("Binds src:dst:ro", {"Binds": ["/etc:/host-etc:ro"]}),
          ("Binds src:dst:rw,z", {"Binds": ["/etc:/host-etc:rw,z"]}),
          ("Binds dotdot", {"Binds": ["/srv/../etc:/host-etc"]}),
          ("Binds trailing slash", {"Binds": ["/etc/:/host-etc"]}),
          ("Mounts bind", {"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/host-etc"}]}),
          ("Mounts bind ro", {"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/host-etc", "ReadOnly": True}]}),
      )),
    _s("bind", "Mounts volume local o=bind",
       lambda i: any(((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options", {}).get("device") == "/etc"
                     for m in _hc(i).get("Mounts") or []),
       {"Mounts": [{"Type": "volume", "Target": "/host-etc", "VolumeOptions": {"DriverConfig": {
           "Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}),
    _s("bind", "Mounts volume o=rbind,ro",
       lambda i: any(((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options", {}).get("device") == "/etc"
                     for m in _hc(i).get("Mounts") or []),
       {"Mounts": [{"Type": "volume", "Target": "/host-etc", "VolumeOptions": {"DriverConfig": {
           "Options": {"type": "none", "o": "rbind,ro", "device": "/etc"}}}}]}),
    # a local volume that mounts more than a tmpfs: a host directory overlaid, a kernel file system, a device
    *(_s("volume-mounts", f"Mounts volume type={options['type']}",
         lambda i, t=options["type"]: any(((m.get("VolumeOptions") or {}).get("DriverConfig") or {})
                                          .get("Options", {}).get("type") == t for m in _hc(i).get("Mounts") or []),
         {"Mounts": [{"Type": "volume", "Target": "/host", "VolumeOptions": {"DriverConfig": {"Options": options}}}]})
      for options in ({"type": "overlay", "device": "overlay", "o": "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"},
                      {"type": "proc", "device": "proc"}, {"type": "ext4", "device": "/dev/sda1"},
                      {"type": "nfs", "device": ":/", "o": "addr=127.0.0.1"})),
    _s("log-driver", "LogConfig syslog", lambda i: _hc(i)["LogConfig"]["Type"] == "syslog",
       {"LogConfig": {"Type": "syslog", "Config": {"syslog-address": "udp://127.0.0.1:514"}}}),
    _s("cgroup-parent", "CgroupParent /", lambda i: _hc(i)["CgroupParent"] == "/", {"CgroupParent": "/"}),
    _s("unconfined", "disable (label=disable to dockerd)", lambda i: "disable" in (_hc(i)["SecurityOpt"] or []),
       {"SecurityOpt": ["disable"]}),
    _s("volumes-from", "VolumesFrom", lambda i: bool(_hc(i)["VolumesFrom"]), {"VolumesFrom": ["{victim}"]}),
    *(_s("unconfined", opt, lambda i, o=opt: o in (_hc(i)["SecurityOpt"] or []), {"SecurityOpt": [opt]})
      for opt in ("seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "apparmor:unconfined",
                  "label=disable", "label:disable")),
    # the CLI's --security-opt systempaths=unconfined: it sends these (dockerd refuses the option itself)
    _s("unconfined", "MaskedPaths []", lambda i: _hc(i).get("MaskedPaths") == [], {"MaskedPaths": []}),
    _s("unconfined", "ReadonlyPaths []", lambda i: _hc(i).get("ReadonlyPaths") == [], {"ReadonlyPaths": []}),
    _s("runtime", "Runtime", lambda i: _hc(i)["Runtime"] == "io.containerd.runc.v2", {"Runtime": "io.containerd.runc.v2"}),
    _s("sysctl", "Sysctls", lambda i: bool(_hc(i)["Sysctls"]), {"Sysctls": {"net.ipv4.ip_forward": "1"}}),
    *(_s("root", user, lambda i, u=user: i["Config"]["User"] == u, None, User=user)
      for user in ("0", "00", "+0", "0:0", "root", "root:root", "0:1000")),
    # a privileged host port (or one the daemon picks) as go-connections' nat reads HostPort: before a "/", the
    # first two parts of a range, leading zeros; "/80" is no port at all to it (the daemon picks one)
    *(_s("host-port", f"HostPort {text!r}", lambda i, t=text: t in _host_ports(i),
         {"PortBindings": {"80/tcp": [{"HostIp": address, "HostPort": text}]}})
      for text, address in (("80", ""), ("0080", ""), ("80/udp", ""), ("80/", ""), ("79-81", ""),
                            ("80-80-9999", ""), ("22", "127.0.0.1"), ("/80", ""), ("", ""))),
    _s("host-port", "PublishAllPorts", lambda i: _hc(i)["PublishAllPorts"] is True, {"PublishAllPorts": True}),
)


def _host_ports(inspect: dict[str, Any]) -> list[str]:
    return [binding.get("HostPort", "") for bindings in (_hc(inspect).get("PortBindings") or {}).values()
            for binding in bindings or []]

