"""DSCP marks on what a container sends: iptables ``DSCP`` rules in its network namespace.

The kernels powerstrip runs on may lack tc's packet-editing actions (``pedit``, ``skbedit``), while
netfilter's DSCP target is everywhere Docker runs (Docker needs iptables). The rules live in a chain
of their own, ``PS-QOS`` in the ``mangle`` table, jumped to from ``POSTROUTING``; each rule's comment
names its policy and a digest of the rule, so ``program`` can tell whether the chain is what is
wanted without parsing iptables' output, and removing the chain removes every mark.
"""

from __future__ import annotations

import hashlib
import re
import subprocess

from powerstrip.adapters.qos.plan import Mark

CHAIN = "PS-QOS"
TIMEOUT = 10.0
_COMMENT = re.compile(r'--comment "?(powerstrip qos [^"\s]+ [0-9a-f]{8})"?')


class MarkError(Exception):
    """iptables refused or failed; the message is its own."""


def comment(mark: Mark) -> str:
    """``powerstrip qos POLICY DIGEST``: names the rule's policy; the digest changes with the rule."""
    digest = hashlib.sha256(" ".join([*mark.match, str(mark.dscp)]).encode()).hexdigest()[:8]
    return f"powerstrip qos {mark.policy} {digest}"


def rule(mark: Mark) -> list[str]:
    return [*mark.match, "-m", "comment", "--comment", comment(mark), "-j", "DSCP", "--set-dscp", str(mark.dscp)]


def installed(netns: str) -> list[str] | None:
    """The comments of the chain's rules, in order; ``None`` when the namespace has no chain."""
    result = _iptables(netns, "-S", CHAIN, check=False)
    if result.returncode != 0:
        return None
    return [m[1] for line in result.stdout.splitlines() if (m := _COMMENT.search(line))]


def program(netns: str, marks: tuple[Mark, ...], known: list[str] | None = None) -> bool:
    """Make the chain in ``netns`` (a path such as /proc/PID/ns/net) hold ``marks``; returns whether it changed.

    ``known`` is what the chain held when this caller last looked (saves a read when nothing changed).
    Another pass (the CLI's, a host-aware rule's) may have changed the chain since, so a change is
    made from what the chain holds now, never from ``known``."""
    rules = [rule(m) for m in marks]
    wanted = [comment(m) for m in marks]
    if known is not None and known == (wanted or None):
        return False
    present = installed(netns)
    if present == (wanted or None):
        return False
    if present is None:
        _iptables(netns, "-N", CHAIN)
    else:
        _iptables(netns, "-F", CHAIN)
    if not rules:
        _iptables(netns, "-D", "POSTROUTING", "-j", CHAIN, check=False)
        _iptables(netns, "-X", CHAIN)
        return True
    for args in rules:
        _iptables(netns, "-A", CHAIN, *args)
    if _iptables(netns, "-C", "POSTROUTING", "-j", CHAIN, check=False).returncode != 0:
        _iptables(netns, "-A", "POSTROUTING", "-j", CHAIN)
    return True


def _iptables(netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["nsenter", f"--net={netns}", "iptables", "-w", "5", "-t", "mangle", *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MarkError(f"iptables {' '.join(args)}: {exc}") from None
    if check and result.returncode != 0:
        raise MarkError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result
