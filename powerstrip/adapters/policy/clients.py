"""Which profile a client gets: the first whose ``match`` fits the connection's peer."""

from __future__ import annotations

import fnmatch
import ipaddress
import os

from powerstrip.adapters.policy.model import ClientMatch, Policy, Profile
from powerstrip.hooks.model import Peer


def profile_for(policy: Policy, peer: Peer) -> Profile | None:
    return next((profile for profile in policy.profiles if fits(profile.match, peer)), None)


def fits(match: ClientMatch, peer: Peer) -> bool:
    """Every key the match gives must hold; a key that needs what the peer lacks (a uid on TCP) fails."""
    if match.uids is not None and peer.uid not in match.uids:
        return False
    if match.gids is not None and peer.gid not in match.gids:
        return False
    if match.networks is not None:
        address = _ip(peer.address)
        if address is None or not any(address in network for network in match.networks):
            return False
    if match.cert_cns is not None and not (peer.cert_cn and _any_glob(peer.cert_cn, match.cert_cns)):
        return False
    if match.cert_sans is not None:
        names = set(peer.cert_sans) | {san.split(":", 1)[-1] for san in peer.cert_sans}
        if not any(_any_glob(name, match.cert_sans) for name in names):
            return False
    if match.listeners is not None and not (peer.listener and _listener(peer.listener) in map(_listener, match.listeners)):
        return False
    return True


def _any_glob(value: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, glob) for glob in globs)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``127.0.0.1:5000`` / ``[::1]:5000`` → the IP (an IPv4-mapped IPv6 address as IPv4)."""
    if not address:
        return None
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _listener(address: str) -> str:
    """Unix listeners compare by absolute path (``unix://./gw.sock`` is the gateway's cwd's gw.sock)."""
    if address.startswith("unix://"):
        return "unix://" + os.path.abspath(address.removeprefix("unix://"))
    return address


def describe_peer(peer: Peer) -> str:
    """The client in a refusal message: ``uid 1000 gid 1000``, ``127.0.0.1:5000``, ``CN=ci``."""
    parts = []
    if peer.uid is not None:
        parts.append(f"uid {peer.uid} gid {peer.gid}")
    if peer.address is not None:
        parts.append(peer.address)
    if peer.cert_subject:
        parts.append(peer.cert_subject)
    return ", ".join(parts) or "an unidentified client"
