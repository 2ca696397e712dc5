"""The ``qos:<policy JSON>`` action: a QoS policy (issue 13) on this host's containers while the rule holds.

When the rule is met, the policy of the action's JSON is stored in the QoS store (the SQLite file of
the networks, or etcd with ``--cluster``) as ``hostaware-RULE-HOST``, restricted to this host
(``Policy.host``: a cluster's policies otherwise apply on every member) and owned by the rule
(``Policy.rule``; ``powerstrip qos list`` shows ``rule RULE on HOST``); one QoS pass then puts it in
this host's kernel before the THRESHOLD_MET message is recorded. When the rule clears, the policy is
deleted and a pass takes its qdiscs, classes and filters away. Containers started while it holds get
it from the ``qos`` adapter's converger, as any policy (run ``builtin:qos`` beside ``builtin:hostaware``).

Restarts: the action's state lives in the gateway (a rule holds once ``times`` polls in a row met it,
as this gateway saw them). So a gateway that stops removes the policies of its rules, and one that
starts removes those a killed gateway left on its host (``sweep``); a rule that still holds applies
its policy again after ``times`` polls. A policy is never kept for a rule nobody watches.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace

from powerstrip.adapters.hostaware.model import QOS_UNNAMED, InvalidRule, Level, Message, Rule, qos_policy
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.model import NetError, NotFound
from powerstrip.adapters.qos.engine import APPLIED
from powerstrip.adapters.qos.policy import check_conflicts, valid_name
from powerstrip.adapters.qos.service import Qos, add_policy, check_networks

log = logging.getLogger(__name__)

PREFIX = "hostaware-"


def policy_name(rule: str, host: str) -> str:
    """``hostaware-RULE-HOST``; when that is not a valid policy name (too long, odd characters), the rule's
    name cut short and a digest of both, so it stays one name per rule and host."""
    name = f"{PREFIX}{rule}-{host}"
    if valid_name(name):
        return name
    digest = hashlib.sha256(f"{rule}\0{host}".encode()).hexdigest()[:10]
    return f"{PREFIX}{rule[:40]}-{digest}"


def check_rule_policy(qos: Qos, rule: Rule) -> None:
    """What ``rules add`` checks beyond the JSON (blocking; raises ``InvalidRule``): the policy's network and
    addresses are powerstrip's, and it contradicts none of the operator's policies (nor the containers'
    ``SP_QOS_RATE``). Another rule's policy is checked when both hold on one host: then the second is a WARN."""
    policy = qos_policy(rule.action.argument)
    try:
        check_networks(policy, qos.networks.store.networks())
        check_conflicts(policy, [p for p in qos.policies.policies() if p.rule is None])
    except NetError as exc:
        detail = exc.message.replace(f"invalid policy {QOS_UNNAMED}: ", "").replace(f"policy {QOS_UNNAMED} ", "it ")
        raise InvalidRule(f'"action" qos:<policy JSON>: {detail}') from None


class QosAction:
    """Stores, applies and removes the policies of this host's ``qos:`` rules. ``opener`` gives the QoS
    stores and engine (``qos.service.open_qos``), opened on first use. Failures are WARN messages (or,
    at start and stop, log lines), never exceptions: the monitor must go on."""

    def __init__(self, host: str, opener: Callable[[], Qos]) -> None:
        self.host = host
        self._opener = opener
        self._qos: Qos | None = None
        self._applied: dict[str, str] = {}  # rule name -> its policy's name, while it holds

    def _open(self) -> Qos:
        if self._qos is None:
            self._qos = self._opener()
        return self._qos

    async def apply(self, rule: Rule) -> list[Message]:
        name = policy_name(rule.name, self.host)
        try:
            qos = self._open()
            policy = replace(qos_policy(rule.action.argument), name=name, host=qos.engine.host, rule=rule.name)
            await self._delete_owned(qos, name)  # a killed gateway's leftover the sweep could not remove
            await add_policy(qos, policy)
        except _FAILURES as exc:
            return [self._message(Level.WARN, rule, f"QoS policy {name} not applied: {_reason(exc)}")]
        self._applied[rule.name] = name
        log.info("hostaware: rule %s: QoS policy %s stored for host %s", rule.name, name, self.host)
        return await self._pass(rule, name, removed=False)

    async def undo(self, rule: Rule) -> list[Message]:
        name = self._applied.pop(rule.name, policy_name(rule.name, self.host))
        try:
            if not await self._delete_owned(self._open(), name, rule.name):
                return []  # never stored (its WARN said why); an operator's policy of that name stays
        except _FAILURES as exc:
            return [self._message(Level.WARN, rule, f"QoS policy {name} not removed: {_reason(exc)}")]
        return await self._pass(rule, name, removed=True)

    async def sweep(self) -> None:
        """Remove the policies left on this host by a gateway that was killed while rules held."""
        try:
            qos = self._open()
            stale = [p for p in await asyncio.to_thread(qos.policies.policies)
                     if p.rule is not None and p.host == qos.engine.host]
            for policy in stale:
                await self._delete_owned(qos, policy.name)
                log.info("hostaware: removed QoS policy %s left by an earlier gateway (rule %s)", policy.name,
                         policy.rule)
            if stale:
                await qos.engine.sync()
        except _FAILURES as exc:
            log.warning("hostaware: removing QoS policies left by an earlier gateway: %s", _reason(exc))

    async def close(self) -> None:
        """Remove the policies of the rules that hold (nobody watches them once this gateway stops)."""
        if self._qos is None:
            return
        try:
            for name in self._applied.values():
                await self._delete_owned(self._qos, name)
            if self._applied:
                await self._qos.engine.sync()
        except _FAILURES as exc:
            log.warning("hostaware: removing the QoS policies of the rules that hold: %s", _reason(exc))
        finally:
            self._applied.clear()
            await self._qos.networks.docker.close()

    async def _delete_owned(self, qos: Qos, name: str, rule: str | None = None) -> bool:
        """Delete policy ``name`` if a host-aware rule (``rule``, if given) made it for this host; whether
        it did. An operator's policy of that name is never touched (storing ours then fails, saying so)."""
        found = next((p for p in await asyncio.to_thread(qos.policies.policies) if p.name == name), None)
        if found is None or found.rule is None or found.host != qos.engine.host or rule not in (None, found.rule):
            return False
        try:
            await asyncio.to_thread(qos.policies.delete_policy, name)
        except NotFound:
            return False  # deleted meanwhile (by hand: powerstrip qos delete)
        return True

    async def _pass(self, rule: Rule, name: str, removed: bool) -> list[Message]:
        """One QoS pass on this host now, and what it did, as a message."""
        try:
            applied = await self._open().engine.sync()
        except _FAILURES as exc:
            return [self._message(Level.WARN, rule, f"QoS policy {name} {'deleted' if removed else 'stored'}, "
                                  f"but this host's pass failed ({_reason(exc)}): the qos adapter's converger retries")]
        if removed:
            return [self._message(Level.INFO, rule, f"QoS policy {name} removed from this host's containers")]
        states = applied.get(name, {})
        failed = {c: s for c, s in sorted(states.items()) if s != APPLIED}
        if failed:
            return [self._message(Level.WARN, rule, f"QoS policy {name}: " +
                                  "; ".join(f"{c}: {s}" for c, s in failed.items()))]
        if not states:
            return [self._message(Level.INFO, rule, f"QoS policy {name} stored: no container on this host "
                                  "matches it yet (containers started later get it)")]
        return [self._message(Level.INFO, rule, f"QoS policy {name} applied to {', '.join(sorted(states))}")]

    def _message(self, level: Level, rule: Rule, text: str) -> Message:
        if level is Level.WARN:
            log.warning("hostaware: rule %s: %s", rule.name, text)
        return Message(time.time(), level, self.host, text, rule.name, rule.metric, None, str(rule.action))


# what a store, the daemon or the kernel can answer instead of doing it (sqlite3 and OS errors of a
# state directory that cannot be written; TimeoutError: another pass held the host's lock too long)
_FAILURES = (NetError, DockerError, TimeoutError, sqlite3.Error, OSError)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
