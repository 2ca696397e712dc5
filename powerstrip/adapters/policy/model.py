"""The policy as immutable values: profiles, their rules, their powers, and a decision."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal, Union

Mode = Literal["enforce", "warn", "audit"]
MODES: tuple[Mode, ...] = ("enforce", "warn", "audit")
Action = Literal["allow", "deny"]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
NAMESPACES = ("network", "pid", "ipc", "uts", "userns", "cgroup")
LIMITS = ("memory", "cpu", "pids")


@dataclass(frozen=True, slots=True)
class PathGlob:
    """``METHOD[,METHOD...] /path/glob`` on the version-stripped path: ``*`` within one path segment,
    ``**`` across segments, ``*`` as the method for any method."""

    text: str
    methods: frozenset[str] | None  # None: any method
    regex: re.Pattern[str]

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and self.regex.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``allow``/``deny`` entry; ``line`` is where it is written (``file:line`` in decisions)."""

    action: Action
    patterns: tuple[PathGlob, ...]
    reason: str | None = None
    mode: Mode | None = None  # None: the profile's mode
    line: int = 0
    source: str = ""  # the file, or "preset NAME"

    def matches(self, method: str, path: str) -> bool:
        return any(pattern.matches(method, path) for pattern in self.patterns)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(frozen=True, slots=True)
class ClientMatch:
    """Who a profile is for; every key given must hold, a key's list holds when one of its items does.
    An empty match fits every client."""

    uids: frozenset[int] | None = None
    gids: frozenset[int] | None = None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    cert_cns: tuple[str, ...] | None = None  # fnmatch globs
    cert_sans: tuple[str, ...] | None = None  # fnmatch globs over "DNS:x", "IP:x", "URI:x", "email:x" and bare values
    listeners: tuple[str, ...] | None = None  # unix:///abs/path or tcp://host:port


@dataclass(frozen=True, slots=True)
class HostPorts:
    """The host ports a profile's containers may publish: inclusive ranges, and whether ports the daemon (or the
    swarm) picks itself (``-p 80``, ``-P``: never a port the client chose)."""

    ranges: tuple[tuple[int, int], ...] = ()
    ephemeral: bool = False

    def covers(self, start: int, end: int) -> bool:
        """Whether every port from ``start`` to ``end`` is in the ranges (they may overlap or touch)."""
        needed = start
        for low, high in sorted(self.ranges):
            if low > needed:
                break
            needed = max(needed, high + 1)
            if needed > end:
                return True
        return needed > end

    def allows(self, start: int, end: int) -> bool:
        """Whether a binding of ports ``start`` to ``end`` may be published; ``(0, 0)`` is a port the daemon picks."""
        return self.ephemeral if (start, end) == (0, 0) else self.covers(start, end)

    def __str__(self) -> str:
        shown = [str(low) if low == high else f"{low}-{high}" for low, high in self.ranges]
        return ", ".join(shown + (["ephemeral"] if self.ephemeral else [])) or "none"


@dataclass(frozen=True, slots=True)
class Powers:
    """What a create/exec/service/build/volume body may ask of the host. The defaults allow none of the
    host powers; ``unrestricted`` (socket-proxy compatibility) checks no body at all."""

    unrestricted: bool = False
    privileged: bool = False
    host_namespaces: frozenset[str] = frozenset()  # of NAMESPACES
    join_containers: bool = False  # network/pid/ipc/cgroup "container:<id>"
    capabilities: frozenset[str] = frozenset()  # allowed in CapAdd, canonical "NET_BIND_SERVICE" form
    require_drop: frozenset[str] = frozenset()  # must be in CapDrop
    devices: bool = False  # Devices, DeviceCgroupRules
    device_requests: bool = False  # DeviceRequests (--gpus)
    bind_sources: tuple[str, ...] = ()  # allowed host path prefixes for binds (cleaned, no trailing /)
    volumes_from: bool = False
    unconfined: bool = False  # seccomp/apparmor unconfined or custom, label=disable, Masked/ReadonlyPaths
    require_no_new_privileges: bool = False
    runtimes: tuple[str, ...] = ("", "runc")
    sysctls: tuple[str, ...] = ()  # fnmatch globs of allowed sysctl names
    root: bool = True  # may run as uid 0 (False: User must name a numeric non-zero uid)
    images: tuple[str, ...] | None = None  # fnmatch globs over normalised references; None: any image
    require_limits: frozenset[str] = frozenset()  # of LIMITS
    network_drivers: tuple[str, ...] = ("bridge", "overlay")  # POST /networks/create Driver (empty: bridge)
    volume_mounts: bool = False  # local volumes whose type/device mount more than a tmpfs (binds: bind_sources)
    plugins: bool = False  # plugin pull, create, upgrade, set
    swarm: bool = False  # swarm init/join/leave/update/unlock, node changes, GET /swarm (join tokens)
    image_loads: bool = False  # POST /images/load for a profile with an owner (its tags cannot be judged)
    log_drivers: tuple[str, ...] = ("", "json-file", "local", "none")  # LogConfig.Type ("" the daemon's default)
    host_ports: HostPorts | None = None  # published host ports (PortBindings, PublishAllPorts, services); None: any
    network_subnets: tuple[IPNetwork, ...] | None = None  # where a network's IPAM addresses may lie; None: anywhere



@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    rate: float
    burst: int
    line: int = 0  # where ``rate_limit`` is written: the "rule" of a refusal in the audit log
    source: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def __str__(self) -> str:
        return f"rate_limit {self.rate:g}/s, burst {self.burst}"


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most ``max`` of the profile's requests in progress at a time (all its clients together). Long-lived
    streams (``concurrency.long_lived``: events, logs -f, attach, exec sessions, stats streams, wait, BuildKit
    sessions) count only with ``streams``: they last as long as a container or a session, not a daemon call."""

    max: int
    streams: bool = False
    line: int = 0
    source: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def __str__(self) -> str:
        counted = "streams counted too" if self.streams else "long-lived streams not counted"
        return f"concurrency {self.max} ({counted})"


@dataclass(frozen=True, slots=True)
class Redaction:
    """What a profile must not see in the daemon's answers."""

    env: bool = False  # Config.Env values in container inspect ("NAME=<redacted>")
    mounts: bool = False  # Mounts and HostConfig.Binds sources in inspect


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    match: ClientMatch
    rules: tuple[Rule, ...]
    powers: Powers = Powers()
    mode: Mode = "enforce"
    rate_limit: RateLimit | None = None
    owner: str | None = None  # stamped as label OWNER_LABEL on what it creates; lists filtered to it
    labels: tuple[tuple[str, str], ...] = ()  # injected into what it creates
    env: tuple[tuple[str, str], ...] = ()  # injected into the containers it creates
    image_remap: tuple[tuple[str, str], ...] = ()  # normalised image prefix -> replacement, first match
    redact: Redaction = Redaction()
    line: int = 0
    concurrency: Concurrency | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    profiles: tuple[Profile, ...]
    source: str = ""
    owner_label: str = "powerstrip.owner"

    def profile(self, name: str) -> Profile | None:
        return next((profile for profile in self.profiles if profile.name == name), None)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy said about one request, and why: for the client, the audit log and ``explain``."""

    allowed: bool  # what the rules say, before the mode
    profile: Profile | None
    rule: Rule | None  # None: the default (no rule matched) or no profile
    reason: str
    mode: Mode = "enforce"
    violations: tuple[str, ...] = field(default=())
    limit: RateLimit | Concurrency | None = None  # a refusal by the profile's rate limit or concurrency cap

    @property
    def refused(self) -> bool:
        """Whether the client is refused: only a denial in enforce mode is."""
        return not self.allowed and self.mode == "enforce"
