"""Body rules: does a request ask the daemon for a host power its profile does not have?

The bodies are the canonical objects the gateway hands every hook (dockerd's field names, legacy placement
resolved, see powerstrip/canonical), so only canonical keys are read here. What this module must get right
is every *value* spelling dockerd accepts for the same power: root as ``0``, ``00``, ``+0``, ``0:0`` or
``root``; ``seccomp=unconfined`` and ``seccomp:unconfined``; ``CAP_SYS_ADMIN``, ``sys_admin`` and ``ALL``;
a bind as ``Binds`` ``src:dst:opts``, as a ``Mounts`` bind, or as a local volume with ``o=bind``.
Each check returns the violations as sentences the client reads in the 403.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import os
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

from powerstrip.adapters.policy.model import IPNetwork, Powers
from powerstrip.adapters.policy.paths import LEGACY_START, SERVICE_SPEC

Body = Mapping[str, Any]
Query = Mapping[str, list[str]]
Checker = Callable[[Body, Query, Powers], list[str]]

_NAMESPACE_FIELDS = (("NetworkMode", "network"), ("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts"),
                     ("UsernsMode", "userns"), ("CgroupnsMode", "cgroup"))
_JOINABLE = ("NetworkMode", "PidMode", "IpcMode", "Cgroup")
_TRUE = ("1", "t", "true")  # Go's strconv.ParseBool, lowered


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- the powers, each over a HostConfig-shaped mapping -------------------------------------------


def host_config_violations(host: Mapping[str, Any], powers: Powers) -> list[str]:
    """Every power ``host`` (a HostConfig, or the Resources of an update) asks for that ``powers`` lacks."""
    found: list[str] = []
    if host.get("Privileged") is True and not powers.privileged:
        found.append("privileged containers are not allowed")
    found += _namespaces(host, powers)
    found += _capabilities(host, powers)
    if not powers.devices:
        if _list(host.get("Devices")):
            found.append("host devices (Devices) are not allowed")
        if _list(host.get("DeviceCgroupRules")):
            found.append("device cgroup rules (DeviceCgroupRules) are not allowed")
    if _list(host.get("DeviceRequests")) and not powers.device_requests:
        found.append("device requests (DeviceRequests, --gpus) are not allowed")
    found += [f"bind mount of {source!r} is not allowed ({_allowed_sources(powers)})"
              for source in _bind_sources(host) if not _source_allowed(source, powers)]
    for mount in _list(host.get("Mounts")):
        mount = _dict(mount)
        if _text(mount.get("Type")).lower() == "volume":
            driver = _dict(_dict(mount.get("VolumeOptions")).get("DriverConfig"))
            found += local_volume_violations(_text(driver.get("Name")), _dict(driver.get("Options")), powers)
    if _list(host.get("VolumesFrom")) and not powers.volumes_from:
        found.append("VolumesFrom (another container's mounts) is not allowed")
    found += _security(host, powers)
    runtime = _text(host.get("Runtime"))
    if runtime not in powers.runtimes:
        found.append(f"runtime {runtime!r} is not allowed (allowed: {', '.join(map(repr, powers.runtimes))})")
    for name in _dict(host.get("Sysctls")):
        if not any(fnmatch.fnmatchcase(str(name), glob) for glob in powers.sysctls):
            found.append(f"sysctl {name!r} is not allowed")
    found += _limits(host, powers)
    found += _published_ports(host, powers)
    found += log_driver_violations(_text(_dict(host.get("LogConfig")).get("Type")), powers)
    if _text(host.get("CgroupParent")) and not powers.unconfined:
        found.append(f"CgroupParent {_text(host.get('CgroupParent'))!r} is not allowed: it takes the container out "
                     "of the daemon's cgroup parent and its limits")
    return found


def _published_ports(host: Mapping[str, Any], powers: Powers) -> Iterator[str]:
    """Host ports a container would take (``PortBindings``, ``PublishAllPorts``) that ``host_ports`` does not
    list: privileged ports, and any address of the host's, its loopback included."""
    allowed = powers.host_ports
    if allowed is None:
        return
    for container_port, bindings in _dict(host.get("PortBindings")).items():
        for binding in _list(bindings):
            text = _text(_dict(binding).get("HostPort"))
            span = host_port_range(text)
            if span is None:
                yield f"host port {text!r} (for {container_port}) cannot be read as dockerd reads it"
            elif not allowed.allows(*span):
                shown = f"host port {span[0]}" if span[0] == span[1] else f"host port {span[0]}-{span[1]}"
                yield (f"publishing {container_port} on a port the daemon picks" if span == (0, 0)
                       else f"{shown} (for {container_port})") + f" is not allowed (host ports: {allowed})"
    if host.get("PublishAllPorts") is True and not allowed.ephemeral:
        yield f"publishing every exposed port (PublishAllPorts) is not allowed (host ports: {allowed})"


def host_port_range(host_port: str) -> tuple[int, int] | None:
    """A binding's ``HostPort`` as dockerd reads it (go-connections' ``NewPort(SplitProtoPort(...))``): the first
    and last port, ``(0, 0)`` for a port the daemon picks, None for what dockerd refuses. Go keeps what is before a
    ``/`` (``80/udp`` is 80, but ``/80`` is empty: a port the daemon picks), and of a range its first two parts
    (``80-80-9999`` is 80 to 80); each number as ``strconv.ParseUint(s, 10, 16)``: ASCII digits, leading zeros
    allowed, at most 65535."""
    parts = host_port.split("/")
    port = host_port if len(parts) == 1 else parts[0]
    if not port:
        return 0, 0
    if "-" not in port:
        number = _go_uint16(port)
        return None if number is None else (number, number)
    first, second = port.split("-")[:2]
    start, end = _go_uint16(first), _go_uint16(second)
    if start is None or end is None or end < start:
        return None
    return start, end


def _go_uint16(text: str) -> int | None:
    if not text or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= 65535 else None


def log_driver_violations(driver: str, powers: Powers) -> list[str]:
    """A log driver not listed: syslog, gelf, fluentd, splunk and the cloud drivers send every line from the
    daemon's own network (a listener on the host's loopback included) or with the host's credentials."""
    if driver in powers.log_drivers:
        return []
    return [f"log driver {driver!r} is not allowed (allowed: {', '.join(map(repr, powers.log_drivers))})"]


def _namespaces(host: Mapping[str, Any], powers: Powers) -> Iterator[str]:
    for field_name, namespace in _NAMESPACE_FIELDS:
        value = _text(host.get(field_name)).lower()
        if value == "host" and namespace not in powers.host_namespaces:
            yield f"the host's {namespace} namespace ({field_name}=host) is not allowed"
    for field_name in _JOINABLE:
        value = _text(host.get(field_name))
        if value.lower().startswith("container:") and not powers.join_containers:
            yield f"joining another container's namespace ({field_name}={value}) is not allowed"


def capability(name: str) -> str:
    """``cap_sys_admin``, ``CAP_SYS_ADMIN``, ``sys_admin`` → ``SYS_ADMIN`` (dockerd's normalisation); ``ALL``."""
    upper = name.strip().upper()
    return upper.removeprefix("CAP_")


def _capabilities(host: Mapping[str, Any], powers: Powers) -> Iterator[str]:
    for field_name in ("CapAdd", "Capabilities"):  # Capabilities (API 1.40) replaces the default set
        for item in _list(host.get(field_name)):
            cap = capability(_text(item))
            if cap not in powers.capabilities:
                yield f"capability {item!r} ({field_name}) is not allowed"
    dropped = {capability(_text(item)) for item in _list(host.get("CapDrop"))}
    missing = sorted(cap for cap in powers.require_drop if cap not in dropped and "ALL" not in dropped)
    if missing:
        yield f"CapDrop must include {', '.join(missing)}"


def _bind_sources(host: Mapping[str, Any]) -> Iterator[str]:
    """Every host path the container would see by a bind: ``Binds`` with a path source, ``Mounts`` of type
    bind (volumes whose driver options mount something are ``local_volume_violations``)."""
    for bind in _list(host.get("Binds")):
        source = _text(bind).split(":", 1)[0]
        if source.startswith("/") or not source:
            yield source or _text(bind)
    for mount in _list(host.get("Mounts")):
        mount = _dict(mount)
        if _text(mount.get("Type")).lower() == "bind":
            yield _text(mount.get("Source"))


def local_volume_violations(driver: str, options: Mapping[str, Any], powers: Powers) -> list[str]:
    """What a ``local`` volume's driver options would mount with the daemon's privileges.

    dockerd's local driver calls mount(2) with ``device``, ``type`` and ``o`` as given: ``o=bind`` binds the
    host path ``device`` (judged as a bind source), and any file system but a tmpfs reaches the host: a block
    device (``type=ext4,device=/dev/sda1``), a kernel file system (``proc``, ``sysfs``, ``devtmpfs``,
    ``cgroup``, ``binfmt_misc``), an overlay of host directories (``type=overlay,o=lowerdir=/etc``), a network
    share mounted from the host's own address. Those need the ``volume_mounts`` power."""
    if driver not in ("", "local"):
        return []
    kind, device = _text(options.get("type")), _text(options.get("device"))
    flags = {flag.strip().lower() for flag in _text(options.get("o")).split(",")}  # mount's flags, any case
    if flags & {"bind", "rbind"}:
        if _source_allowed(device, powers):
            return []
        return [f"a volume binding {device or '(no device)'!r} (DriverOpts o=bind) is not allowed "
                f"({_allowed_sources(powers)})"]
    if powers.volume_mounts or kind == "tmpfs" or not (kind or device):
        return []
    return [f"a local volume mounting {kind or '(no type)'} {device!r} (DriverOpts type/device) is not allowed: "
            "it would mount a host device, kernel file system, host directory or network share (volume_mounts)"]


def _source_allowed(source: str, powers: Powers) -> bool:
    """Under an allowed prefix, both as written (cleaned) and, when the gateway sees the same file system,
    with symlinks resolved: a link inside an allowed directory must not lead out of it."""
    if not source.startswith("/"):
        return False
    candidates = {posixpath.normpath(source)}
    if os.path.lexists(source):
        candidates.add(os.path.realpath(source))
    return all(any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in powers.bind_sources)
               for path in candidates)


def _allowed_sources(powers: Powers) -> str:
    return f"allowed sources: {', '.join(powers.bind_sources)}" if powers.bind_sources else "no bind sources are allowed"


def _security(host: Mapping[str, Any], powers: Powers) -> Iterator[str]:
    no_new_privileges = False
    for option in _list(host.get("SecurityOpt")):
        text = _text(option)
        key, value = split_option(text)
        if key == "no-new-privileges":
            no_new_privileges = value == "" or value.lower() in _TRUE
            continue
        if powers.unconfined:
            continue
        if key == "seccomp" or (key == "apparmor" and value != "docker-default") or \
                (key == "label" and (value == "disable" or "spc_t" in value)):
            yield f"security option {text!r} is not allowed"
    if not powers.unconfined:
        for field_name in ("MaskedPaths", "ReadonlyPaths"):
            if field_name in host and host[field_name] is not None:
                yield f"{field_name} (changing the /proc paths masked from containers) is not allowed"
    if powers.require_no_new_privileges and not no_new_privileges:
        yield "SecurityOpt must include no-new-privileges"


def split_option(option: str) -> tuple[str, str]:
    """dockerd splits on ``=``, and on ``:`` for the legacy spelling (``seccomp:unconfined``); a bare
    ``disable`` is ``label=disable`` to it (moby's parseSecurityOpt)."""
    if option.strip() == "disable":
        return "label", "disable"
    separator = "=" if "=" in option else ":"
    key, _, value = option.partition(separator)
    return key.strip().lower(), value.strip()


def _limits(host: Mapping[str, Any], powers: Powers) -> Iterator[str]:
    if "memory" in powers.require_limits and not _positive(host.get("Memory")):
        yield "a memory limit (HostConfig.Memory) is required"
    if "cpu" in powers.require_limits and not (_positive(host.get("NanoCpus")) or _positive(host.get("CpuQuota"))):
        yield "a CPU limit (HostConfig.NanoCpus or CpuQuota) is required"
    if "pids" in powers.require_limits and not _positive(host.get("PidsLimit")):
        yield "a pids limit (HostConfig.PidsLimit) is required"


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


# --- users and images ----------------------------------------------------------------------------


def is_root(user: str) -> bool | None:
    """Whether ``user`` (``uid[:gid]`` or ``name[:group]``) runs as uid 0: True, False, or None when it
    cannot be told here (a name other than root resolves in the image's /etc/passwd; empty means the
    image's own user). Numbers parse like Go's ``strconv.Atoi``: ``00``, ``+0`` and ``-0`` are 0."""
    name = user.split(":", 1)[0]
    if name == "root":
        return True
    if re.fullmatch(r"[+-]?[0-9]+", name):
        return int(name) == 0
    return None


def user_violation(user: Any, powers: Powers, field_name: str) -> list[str]:
    if powers.root:
        return []
    text = _text(user)
    root = is_root(text)
    if root:
        return [f"running as root ({field_name}={text!r}) is not allowed"]
    if root is None:
        shown = f"{field_name}={text!r}" if text else f"no {field_name} (the image's user)"
        return [f"{shown} may be root; give a numeric non-zero uid"]
    return []


def normalise_image(reference: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``, as the daemon resolves it."""
    name, digest = reference.partition("@")[::2]
    first, slash, rest = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def image_violation(image: Any, powers: Powers) -> list[str]:
    if powers.images is None:
        return []
    text = _text(image)
    if re.fullmatch(r"(sha256:)?[0-9a-f]{6,64}", text):
        return [f"image {text!r} looks like an image ID; name the image so the allowed patterns can judge it"]
    full = normalise_image(text)
    forms = {text, full, full.removeprefix("docker.io/"), full.removeprefix("docker.io/library/")}
    if any(fnmatch.fnmatchcase(form, glob) for form in forms for glob in powers.images):
        return []
    return [f"image {text!r} is not allowed (allowed: {', '.join(powers.images)})"]


# --- the endpoints -------------------------------------------------------------------------------


def container_create(body: Body, _query: Query, powers: Powers) -> list[str]:
    return (image_violation(body.get("Image"), powers) + user_violation(body.get("User"), powers, "User")
            + host_config_violations(_dict(body.get("HostConfig")), powers))


def container_start(body: Body, _query: Query, powers: Powers) -> list[str]:
    """API < 1.24 still takes a HostConfig as the start body (dockerd 20.10 applies it)."""
    return host_config_violations(body, powers) if body else []


def container_update(body: Body, _query: Query, powers: Powers) -> list[str]:
    """An update's Resources may add devices; limits it does not name stay as they were, so none is required."""
    return host_config_violations(body, dataclasses.replace(powers, require_limits=frozenset()))


def exec_create(body: Body, _query: Query, powers: Powers) -> list[str]:
    found = ["privileged exec is not allowed"] if body.get("Privileged") is True and not powers.privileged else []
    if _text(body.get("User")):  # without one, the exec runs as the container's user, judged at create
        found += user_violation(body.get("User"), powers, "User")
    return found


def service_spec(body: Body, _query: Query, powers: Powers) -> list[str]:
    """A swarm service's ContainerSpec: the same powers under other names."""
    template = _dict(body.get("TaskTemplate"))
    spec = _dict(template.get("ContainerSpec"))
    host: dict[str, Any] = {
        "Mounts": spec.get("Mounts"), "Sysctls": spec.get("Sysctls"), "CapAdd": spec.get("CapabilityAdd"),
        "CapDrop": spec.get("CapabilityDrop"), "Runtime": "",
        "Memory": _dict(_dict(template.get("Resources")).get("Limits")).get("MemoryBytes"),
        "NanoCpus": _dict(_dict(template.get("Resources")).get("Limits")).get("NanoCPUs"),
        "PidsLimit": _dict(_dict(template.get("Resources")).get("Limits")).get("Pids"),
    }
    found = image_violation(spec.get("Image"), powers) + user_violation(spec.get("User"), powers, "User")
    found += host_config_violations(host, powers)
    privileges = _dict(spec.get("Privileges"))
    if not powers.unconfined:
        if _dict(privileges.get("Seccomp")).get("Mode") in ("unconfined", "custom"):
            found.append("an unconfined or custom seccomp profile is not allowed")
        if _dict(privileges.get("AppArmor")).get("Mode") == "disabled":
            found.append("disabling AppArmor is not allowed")
        if _dict(privileges.get("SELinuxContext")).get("Disable") is True:
            found.append("disabling SELinux labels is not allowed")
    if "network" not in powers.host_namespaces:
        found += [f"the host network ({where} Target {target!r}) is not allowed"
                  for where, target in service_networks(body) if target.lower() == "host"]
    found += log_driver_violations(_text(_dict(template.get("LogDriver")).get("Name")), powers)
    found += _service_ports(body, powers)
    return found


def _service_ports(body: Body, powers: Powers) -> list[str]:
    """A service's ``EndpointSpec.Ports``: its ``PublishedPort`` is taken on every node (the routing mesh, or the
    node the task runs on in ``host`` mode); 0 or none lets the swarm pick one."""
    allowed = powers.host_ports
    if allowed is None:
        return []
    found = []
    for port in _list(_dict(body.get("EndpointSpec")).get("Ports")):
        published = _dict(port).get("PublishedPort")
        number = published if isinstance(published, int) and not isinstance(published, bool) else 0
        if not allowed.allows(number, number):
            shown = f"published port {number}" if number else "publishing a port the swarm picks"
            found.append(f"{shown} is not allowed (host ports: {allowed})")
    return found


def service_networks(body: Body) -> list[tuple[str, str]]:
    """Every network a service spec attaches its tasks to: ``TaskTemplate.Networks`` and the deprecated
    top-level ``Networks``, which swarmkit still reads when the other is empty. Targets may be names, IDs or ID
    prefixes (the adapter resolves those to tell the host network)."""
    lists = (("TaskTemplate.Networks", _list(_dict(body.get("TaskTemplate")).get("Networks"))),
             ("Networks", _list(body.get("Networks"))))
    return [(where, _text(_dict(network).get("Target"))) for where, items in lists for network in items]


def build(_body: Body, query: Query, powers: Powers) -> list[str]:
    """A build's powers are query parameters (its body is the context). dockerd reads the first of each; every
    one is judged, so none can hide behind another. ``networkmode=host`` is the host network; a ``remote``
    context is fetched by the daemon itself, from the host's network (its loopback included), as is an image
    imported ``fromSrc`` a URL; ``cgroupparent`` leaves the daemon's cgroup parent. (``securityopt`` needs no
    check: dockerd on Linux refuses security options on a build.)"""
    found = [violation for mode in query.get("networkmode") or ()
             for violation in _namespaces({"NetworkMode": mode}, powers)]
    found += _fetched_by_the_daemon("remote", [r for r in query.get("remote") or () if r != "client-session"], powers)
    if not powers.unconfined:
        found += [f"cgroupparent {parent!r} is not allowed" for parent in query.get("cgroupparent") or () if parent]
    return found


def image_import(_body: Body, query: Query, powers: Powers) -> list[str]:
    """``POST /images/create?fromSrc=URL``: the daemon downloads the image from the host's network."""
    return _fetched_by_the_daemon("fromSrc", [s for s in query.get("fromSrc") or () if s not in ("", "-")], powers)


def _fetched_by_the_daemon(parameter: str, urls: list[str], powers: Powers) -> list[str]:
    if "network" in powers.host_namespaces:
        return []
    return [f"{parameter}={url!r} is not allowed: the daemon would fetch it from the host's network (as the host "
            "network power allows)" for url in urls]


def volume_create(body: Body, _query: Query, powers: Powers) -> list[str]:
    return local_volume_violations(_text(body.get("Driver")), _dict(body.get("DriverOpts")), powers)


def plugin_install(_body: Body, _query: Query, powers: Powers) -> list[str]:
    """A plugin runs with the privileges it declares (capabilities, host network, devices, mounts of host
    paths): pulling, creating or upgrading one, or setting its mount sources and device paths, is a host
    power of its own. Enabling or removing an installed one is not."""
    if powers.plugins:
        return []
    return ["installing or reconfiguring a plugin is not allowed: plugins run with the host privileges they "
            "declare (plugins)"]


_BRIDGE_NAME = "com.docker.network.bridge.name"


def network_create(body: Body, _query: Query, powers: Powers) -> list[str]:
    """macvlan, ipvlan and the like put containers on the host's own links: drivers are allowed by name."""
    driver = _text(body.get("Driver")) or "bridge"
    found = [] if driver in powers.network_drivers else \
        [f"network driver {driver!r} is not allowed (allowed: {', '.join(powers.network_drivers)})"]
    if _dict(body.get("Options")).get(_BRIDGE_NAME) is not None and "network" not in powers.host_namespaces:
        found.append(f"naming the bridge ({_BRIDGE_NAME}) is not allowed: a name the host already has joins the "
                     "container to that host bridge (as the host network power allows)")
    return found + _ipam_violations(_dict(body.get("IPAM")), powers)


def _ipam_violations(ipam: Mapping[str, Any], powers: Powers) -> list[str]:
    """Addresses a network's IPAM config chooses outside ``network_subnets``: the daemon gives the host a route to
    the subnet through the new bridge (and the gateway address on it), so a subnet inside one of the host's own
    routes takes that traffic over. Without a config the daemon picks a pool clear of the host's routes."""
    allowed = powers.network_subnets
    if allowed is None:
        return []
    found = []
    for config in _list(ipam.get("Config")):
        config = _dict(config)
        given = [(name, _text(config.get(name)), True) for name in ("Subnet", "IPRange")]
        given += [("Gateway", _text(config.get("Gateway")), False)]
        given += [(f"AuxiliaryAddresses {key}", _text(value), False)
                  for key, value in _dict(config.get("AuxiliaryAddresses")).items()]
        for name, text, is_network in given:
            if not text:
                continue
            try:
                value = ipaddress.ip_network(text, strict=False) if is_network else ipaddress.ip_address(text)
            except ValueError:
                found.append(f"IPAM {name} {text!r} cannot be read as dockerd reads it")
                continue
            if not all(any(_within(view, network) for network in allowed) for view in _views(value)):
                found.append(f"IPAM {name} {text} is outside the networks allowed "
                             f"({', '.join(map(str, allowed)) or 'none'}): the host would route it to the new bridge")
    return found


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPValue = Union[IPNetwork, ipaddress.IPv4Address, ipaddress.IPv6Address]


def _views(value: _IPValue) -> list[_IPValue]:
    """What an address or network is to dockerd: one with IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) is also
    the IPv4 one (Go's ``To4``), so it is judged as both."""
    if isinstance(value, ipaddress.IPv6Address) and value.ipv4_mapped is not None:
        return [value, value.ipv4_mapped]
    if isinstance(value, ipaddress.IPv6Network) and value.overlaps(_IPV4_MAPPED):
        if value.prefixlen < 96:
            return [value, ipaddress.IPv4Network("0.0.0.0/0")]
        return [value, ipaddress.IPv4Network((int(value.network_address) & 0xFFFFFFFF, value.prefixlen - 96))]
    return [value]


def _within(value: _IPValue, network: IPNetwork) -> bool:
    if value.version != network.version:
        return False
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value.subnet_of(network)  # type: ignore[arg-type]
    return value in network


def swarm_control(_body: Body, _query: Query, powers: Powers) -> list[str]:
    """Making, joining, leaving or changing a swarm, changing its nodes, or reading its join tokens
    (``GET /swarm``) or unlock key: a manager's tokens let another machine join and be given every service."""
    if powers.swarm:
        return []
    return ["controlling the swarm (init, join, leave, update, unlock, nodes) or reading its join tokens is not "
            "allowed (swarm)"]


@dataclass(frozen=True, slots=True)
class BodyCheck:
    """The powers check of one endpoint; ``reads_body`` False when it judges the query only (a build's body
    is its context archive)."""

    check: Checker
    reads_body: bool = True


_ENDPOINTS: tuple[tuple[str, re.Pattern[str], BodyCheck], ...] = (
    ("POST", re.compile(r"/containers/create"), BodyCheck(container_create)),
    ("POST", LEGACY_START, BodyCheck(container_start)),
    ("POST", re.compile(r"/containers/[^/]+/update"), BodyCheck(container_update)),
    ("POST", re.compile(r"/containers/[^/]+/exec"), BodyCheck(exec_create)),
    ("POST", SERVICE_SPEC, BodyCheck(service_spec)),
    ("POST", re.compile(r"/build"), BodyCheck(build, reads_body=False)),
    ("POST", re.compile(r"/images/create"), BodyCheck(image_import, reads_body=False)),
    ("POST", re.compile(r"/volumes/create"), BodyCheck(volume_create)),
    ("POST", re.compile(r"/networks/create"), BodyCheck(network_create)),
    ("POST", re.compile(r"/plugins/(?:pull|create)"), BodyCheck(plugin_install, reads_body=False)),
    ("POST", re.compile(r"/plugins/.+/(?:upgrade|set)"), BodyCheck(plugin_install, reads_body=False)),
    ("POST", re.compile(r"/swarm/(?:init|join|leave|update|unlock)"), BodyCheck(swarm_control, reads_body=False)),
    ("GET", re.compile(r"/swarm(?:/unlockkey)?"), BodyCheck(swarm_control, reads_body=False)),
    ("POST", re.compile(r"/nodes/[^/]+/update"), BodyCheck(swarm_control, reads_body=False)),
    ("DELETE", re.compile(r"/nodes/[^/]+"), BodyCheck(swarm_control, reads_body=False)),
)


# The endpoints whose body is data for the daemon, not instructions: a build context, a file archive, an image or
# plugin tarball. No check reads them (a build's powers are in its query, a plugin's are judged by its path), so
# the gateway may stream them past the policy unread, whatever their size or bytes.
_DATA_BODIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/build")),
    ("PUT", re.compile(r"/containers/.+/archive")),
    ("POST", re.compile(r"/images/(?:load|create)")),
    ("POST", re.compile(r"/plugins/create")),
)


def data_body(method: str, path: str) -> bool:
    """Whether ``method path`` (version-stripped) carries a body no policy check reads."""
    return any(m == method and regex.fullmatch(path) for m, regex in _DATA_BODIES)


def checker_for(method: str, path: str) -> BodyCheck | None:
    """The powers check of the endpoint ``method path`` (version-stripped), or None for one without powers."""
    method = method.upper()  # dockerd's router would not route "post", but a check must not hinge on that
    return next((check for m, regex, check in _ENDPOINTS if m == method and regex.fullmatch(path)), None)
