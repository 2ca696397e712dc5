"""QoS policies: the JSON documents operators push (qospusher's shape), read and checked with no I/O.

A policy matches IPv4 packets (``ip-src``, ``ip-dst``, ``protocol``, ``tp-src``, ``tp-dst``,
``network``) and acts on them: ``rate`` (with ``burst``) sends them through a token bucket of that
rate, ``dscp`` rewrites the DSCP bits of their ToS byte. Everything a user can get wrong is refused
here with a message naming the field, before anything is stored or applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from typing import Any

from powerstrip.adapters.net.model import Conflict, InvalidInput

CONTAINER, HOST = "container", "host"  # where an action acts: in the container's namespace, or the host's
LOCAL_HOST = "local"  # the single-host store's only host (a cluster's hosts are named by their underlay address)
FIELDS = ("name", "ip-src", "ip-dst", "protocol", "tp-src", "tp-dst", "network", "rate", "burst", "dscp")
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
_PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
# The DSCP names of RFC 2474/2597/3246/5865 (class selectors, assured forwarding, expedited forwarding).
DSCP_NAMES = {
    "BE": 0, "DEFAULT": 0, "EF": 46, "VA": 44,
    **{f"CS{i}": i * 8 for i in range(8)},
    **{f"AF{c}{d}": c * 8 + d * 2 for c in range(1, 5) for d in range(1, 4)},
}
_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MIN_RATE, MAX_RATE = 8_000, 40 * 10**9  # 8 kbit/s .. 40 gbit/s: what HTB's 64-bit rates carry exactly
MIN_BURST, MAX_BURST = 1600, 64 * 1024**2  # at least one full-size frame; at most 64 MiB


@dataclass(frozen=True, slots=True)
class Match:
    """Which packets a policy is about; ``None`` fields match anything."""

    ip_src: IPv4Network | None = None
    ip_dst: IPv4Network | None = None
    protocol: int | None = None
    tp_src: int | None = None
    tp_dst: int | None = None
    network: str | None = None

    def document(self) -> dict[str, Any]:
        """The match fields that are set, as the input writes them."""
        doc: dict[str, Any] = {}
        if self.ip_src is not None:
            doc["ip-src"] = net_text(self.ip_src)
        if self.ip_dst is not None:
            doc["ip-dst"] = net_text(self.ip_dst)
        if self.protocol is not None:
            doc["protocol"] = _PROTOCOL_NAMES.get(self.protocol, self.protocol)
        for key, value in (("tp-src", self.tp_src), ("tp-dst", self.tp_dst), ("network", self.network)):
            if value is not None:
                doc[key] = value
        return doc

    def overlaps(self, other: Match) -> bool:
        """Whether some packet (on some network) matches both."""
        return (
            _same_or_any(self.network, other.network)
            and _nets_overlap(self.ip_src, other.ip_src)
            and _nets_overlap(self.ip_dst, other.ip_dst)
            and _same_or_any(self.protocol, other.protocol)
            and _same_or_any(self.tp_src, other.tp_src)
            and _same_or_any(self.tp_dst, other.tp_dst)
        )


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate in bits per second, and the text the user wrote it as (shown back as written)."""

    bits: int
    text: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A named policy. Users set none of the last three fields; the gateway does, for what it makes:

    - ``owner``: for a policy made from ``SP_QOS_RATE``, the network-only container whose container
      asked for it (the policy goes with that container);
    - ``host``: the one host it applies on (as the QoS engine names hosts: a cluster member's
      underlay address, or ``local``); ``None`` for every host. A host-aware rule's ``qos:`` action
      acts on the host where the rule holds only, while cluster policies otherwise apply everywhere;
    - ``rule``: the host-aware rule whose ``qos:`` action made it (the policy goes when the rule clears).
    """

    name: str
    match: Match
    rate: Rate | None = None
    burst: int | None = None
    dscp: int | None = None
    owner: str | None = None
    host: str | None = None
    rule: str | None = None

    def applies_on(self, host: str) -> bool:
        return self.host is None or self.host == host

    def conflicts_with(self, other: Policy) -> str | None:
        """What makes the two impossible to honour together (``None`` if nothing), for overlapping matches.

        Two rates acting on the same side (what containers send, or what they receive) conflict even
        when equal: a packet goes to one bucket only, so a policy whose match is partly taken by the
        other could let more through than its rate. A rate on what is sent and one on what is
        received act one after the other: both hold. Two DSCP values conflict when they differ.
        Policies restricted to two different hosts never meet."""
        if self.host is not None and other.host is not None and self.host != other.host:
            return None
        if not self.match.overlaps(other.match):
            return None
        if self.rate is not None and other.rate is not None and rate_side(self) == rate_side(other):
            return f"a rate on what the same containers {'send' if rate_side(self) == CONTAINER else 'receive'}"
        if self.dscp is not None and other.dscp is not None and self.dscp != other.dscp:
            return "a different dscp"
        return None

    def document(self) -> dict[str, Any]:
        """The policy as a JSON object of the input's shape (what the store keeps and ``list`` shows)."""
        doc: dict[str, Any] = {"name": self.name, **self.match.document()}
        if self.rate is not None:
            doc["rate"] = self.rate.text
        if self.burst is not None:
            doc["burst"] = self.burst
        if self.dscp is not None:
            doc["dscp"] = self.dscp
        return doc

    def to_json(self) -> str:
        """Stored form: the document plus the internal fields that are set (which users cannot set)."""
        internal = {key: value for key, value in (("owner", self.owner), ("host", self.host), ("rule", self.rule))
                    if value is not None}
        return json.dumps({**self.document(), **internal}, sort_keys=True)

    def describe_owner(self) -> str:
        """Who made it, as ``qos list`` shows it: ``-`` for the operator's own policies."""
        if self.rule is not None:
            return f"rule {self.rule}" + (f" on {self.host}" if self.host not in (None, LOCAL_HOST) else "")
        if self.owner is not None:
            return f"container {self.name} (SP_QOS_RATE)"  # such a policy is named after its container
        return "-"


INTERNAL = ("owner", "host", "rule")


def from_json(text: str) -> Policy:
    """A stored policy (``Policy.to_json``) back."""
    doc = json.loads(text)
    internal = {key: doc.pop(key, None) for key in INTERNAL}
    return replace(parse_document(doc), **internal)


def parse_policy(text: str) -> Policy:
    """The command line's ``qos add policy JSON``: a JSON object, checked field by field."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"invalid policy: not JSON ({exc})") from None
    return parse_document(doc)


def parse_document(doc: Any) -> Policy:
    if not isinstance(doc, dict):
        raise InvalidInput("invalid policy: expected a JSON object, e.g. {\"name\": \"limit-h1\", \"ip-src\": \"10.0.6.2\", \"rate\": \"2mbit\"}")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"invalid policy: unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput("invalid policy: \"name\" must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit")
    protocol = _protocol(doc.get("protocol"))
    tp_src, tp_dst = _port(doc, "tp-src"), _port(doc, "tp-dst")
    if (tp_src is not None or tp_dst is not None) and protocol not in (6, 17):
        raise InvalidInput(f"invalid policy {name}: tp-src/tp-dst need \"protocol\": \"tcp\" or \"udp\"")
    network = doc.get("network")
    if network is not None and not (isinstance(network, str) and _NAME.fullmatch(network)):
        raise InvalidInput(f"invalid policy {name}: \"network\" must be a network name")
    match = Match(_network(doc, "ip-src"), _network(doc, "ip-dst"), protocol, tp_src, tp_dst, network)
    rate = _rate(name, doc.get("rate")) if "rate" in doc else None
    burst = _burst(name, doc.get("burst")) if "burst" in doc else None
    if burst is not None and rate is None:
        raise InvalidInput(f"invalid policy {name}: \"burst\" needs a \"rate\"")
    dscp = _dscp(name, doc.get("dscp")) if "dscp" in doc else None
    if rate is None and dscp is None:
        raise InvalidInput(f"invalid policy {name}: no action: give \"rate\" (e.g. \"2mbit\") and/or \"dscp\" (e.g. \"EF\")")
    return Policy(name, match, rate, burst, dscp)


def parse_rate(text: Any, what: str = "rate") -> Rate:
    """``2mbit``, ``512kbit``, ``1.5gbit`` (tc's units) → bits per second."""
    if not isinstance(text, str):
        raise InvalidInput(f"invalid {what} {text!r}: expected a string such as \"2mbit\" (units: {', '.join(_RATE_UNITS)})")
    found = _AMOUNT.match(text.lower())
    if not found or found[2] not in _RATE_UNITS:
        raise InvalidInput(f"invalid {what} {text!r}: expected a number and a unit, e.g. \"2mbit\" (units: {', '.join(_RATE_UNITS)})")
    bits = round(float(found[1]) * _RATE_UNITS[found[2]])
    if not MIN_RATE <= bits <= MAX_RATE:
        raise InvalidInput(f"invalid {what} {text!r}: must be between 8kbit and 40gbit")
    return Rate(bits, text.strip())


def check_conflicts(policy: Policy, existing: list[Policy]) -> None:
    """Refuse a new policy whose name is taken or that contradicts one that exists."""
    for other in existing:
        if other.name == policy.name:
            raise Conflict(f"policy {policy.name} already exists: delete it first (powerstrip qos delete {policy.name})")
    for other in existing:
        why = policy.conflicts_with(other)
        if why:
            raise Conflict(f"policy {policy.name} overlaps policy {other.name} ({describe_match(other.match)}) "
                           f"with {why}: narrow the match or delete the other policy")


def describe_match(match: Match) -> str:
    """``ip-src=10.0.6.2 protocol=udp`` (``any`` when it matches everything)."""
    return " ".join(f"{k}={v}" for k, v in match.document().items()) or "any"


def describe_action(policy: Policy) -> str:
    parts = []
    if policy.rate is not None:
        parts.append(f"rate={policy.rate.text}" + (f" burst={policy.burst}" if policy.burst else ""))
    if policy.dscp is not None:
        names = [n for n, v in DSCP_NAMES.items() if v == policy.dscp and n not in ("DEFAULT",)]
        parts.append(f"dscp={names[0] if names else policy.dscp}")
    return " ".join(parts)


def rate_side(policy: Policy) -> str:
    """Where a ``rate`` acts: on what containers send (``ip-src``, or no address at all), or on what
    they receive (``ip-dst`` only). See powerstrip/adapters/qos/plan.py."""
    return HOST if policy.match.ip_src is None and policy.match.ip_dst is not None else CONTAINER


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a policy (the rules of Docker's container names, at most 63 characters)."""
    return bool(_NAME.fullmatch(name))


def _same_or_any(a: object, b: object) -> bool:
    return a is None or b is None or a == b


def _nets_overlap(a: IPv4Network | None, b: IPv4Network | None) -> bool:
    return a is None or b is None or a.overlaps(b)


def net_text(net: IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _network(doc: dict[str, Any], key: str) -> IPv4Network | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"invalid {key} {value!r}: expected an IPv4 address or CIDR, e.g. \"10.0.6.2\" or \"10.0.6.0/24\"")
    try:
        return IPv4Network(value.strip(), strict=True)
    except ValueError as exc:
        if isinstance(exc, (AddressValueError, NetmaskValueError)) or "/" not in value:
            raise InvalidInput(f"invalid {key} {value!r}: expected an IPv4 address or CIDR, e.g. \"10.0.6.2\" or \"10.0.6.0/24\"") from None
        wider = IPv4Network(value.strip(), strict=False)
        raise InvalidInput(f"invalid {key} {value!r}: host bits set (did you mean {wider} or {IPv4Address(value.split('/')[0])}?)") from None


def _protocol(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return PROTOCOLS[value.lower()]
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    raise InvalidInput(f"invalid protocol {value!r}: expected tcp, udp, icmp or a protocol number 0-255")


def _port(doc: dict[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise InvalidInput(f"invalid {key} {value!r}: expected a port number 1-65535")


def _rate(name: str, value: Any) -> Rate:
    try:
        return parse_rate(value)
    except InvalidInput as exc:
        raise InvalidInput(f"invalid policy {name}: {exc.message}") from None


def _burst(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        found = _AMOUNT.match(value.lower()) if isinstance(value, str) else None
        if not found or found[2] not in _SIZE_UNITS:
            raise InvalidInput(f"invalid policy {name}: invalid burst {value!r}: expected bytes, e.g. 15000 or \"15k\" "
                               f"(units: {', '.join(_SIZE_UNITS)})")
        size = round(float(found[1]) * _SIZE_UNITS[found[2]])
    if not MIN_BURST <= size <= MAX_BURST:
        raise InvalidInput(f"invalid policy {name}: invalid burst {value!r}: must be between {MIN_BURST} bytes and 64m")
    return size


def _dscp(name: str, value: Any) -> int:
    if isinstance(value, str) and value.upper() in DSCP_NAMES:
        return DSCP_NAMES[value.upper()]
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 63:
        return value
    raise InvalidInput(f"invalid policy {name}: invalid dscp {value!r}: expected 0-63 or a name such as EF, AF41, CS1")
