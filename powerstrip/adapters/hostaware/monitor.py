"""The loop that drives the evaluator: read rules and metrics when due, act, record, publish.

One task on the gateway's event loop; the blocking parts (the metrics source, the store) run in
threads. Each turn: the rules are re-read from the store every ``RULES_EVERY`` seconds (a rule
added or deleted by the CLI, or on another member, takes effect within that); the source is read
when a rule's poll is due, and at least every ``HEARTBEAT`` s so that ``hosts list`` has fresh
metrics without rules; the effects are carried out; messages go to the store, the log and the
audit log; this host's record is published (its heartbeat, and in a cluster its lease) when a
rule's state changed and at least every ``HEARTBEAT`` s, and the members' records are read then.
With rules polling every second that is one wake-up a second, and a store write every five.

A store that cannot be reached does not stop the rules: messages wait (at most ``PENDING_MAX``)
and are written once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable

from powerstrip.adapters.hostaware.actions import Actions
from powerstrip.adapters.hostaware.evaluator import Effect, Evaluator, Outcome
from powerstrip.adapters.hostaware.model import (HEARTBEAT, ActionKind, HostAwareError, HostRecord, Level, Message,
                                                  Reading, Rule)
from powerstrip.adapters.hostaware.sources import MetricsSource
from powerstrip.adapters.hostaware.store import HostStore

log = logging.getLogger("powerstrip.hostaware")

RULES_EVERY = 1.0
_SLACK = 0.1  # a turn this early still re-reads the rules (so polls and re-reads share turns)
PENDING_MAX = 1000
_STORE_ERRORS = (HostAwareError, sqlite3.Error, OSError)

AuditSink = Callable[[dict[str, object]], None]


class Monitor:
    def __init__(self, host: str, source: MetricsSource, store: HostStore, actions: Actions,
                 audit: AuditSink = lambda entry: None) -> None:
        self.host = host
        self.source = source
        self.store = store
        self.actions = actions
        self.audit = audit
        self.evaluator = Evaluator(host)
        self.reading: Reading | None = None
        self.members: list[HostRecord] = []  # every host's record as last read (a cluster's members)
        self._pending: list[Message] = []
        self._rules_read = 0.0
        self._published = 0.0
        self._published_statuses: dict[str, object] = {}

    async def run(self) -> None:
        log.info("hostaware: monitoring %s, metrics from %s", self.host, self.source.url)
        await self.actions.sweep()
        while True:
            try:
                await self.turn()
            except Exception:  # noqa: BLE001 - a supervision loop: log and go on
                log.exception("hostaware: monitoring turn failed")
            now = time.time()
            due = self.evaluator.next_due()
            wait = min(HEARTBEAT, self._rules_read + RULES_EVERY - now, (due - now) if due is not None else HEARTBEAT)
            if due is not None and due - now < RULES_EVERY * 1.5:
                wait = due - now  # re-read the rules on the poll's turn: one wake-up, not two
            await asyncio.sleep(max(0.05, wait))

    async def turn(self) -> None:
        now = time.time()
        outcomes: list[Outcome] = []
        if now - self._rules_read >= RULES_EVERY - _SLACK:
            try:
                rules = await asyncio.to_thread(self.store.rules)
            except _STORE_ERRORS as exc:
                log.warning("hostaware: reading the rules: %s (keeping the last ones)", exc)
            else:
                self._rules_read = now
                outcomes += self.evaluator.set_rules(rules, now)
        due = self.evaluator.next_due()
        if (due is not None and due <= time.time() + 0.05) or self.reading is None \
                or time.time() - self.reading.time >= HEARTBEAT - 0.05:
            self.reading = await asyncio.to_thread(self.source.read)
            outcomes += self.evaluator.observe(self.reading)
        messages = [outcome.message for outcome in outcomes]
        for outcome in outcomes:
            if outcome.rule is not None and outcome.effect is not Effect.NONE:
                messages += await self._carry_out(outcome.rule, outcome)
        messages += self.actions.late
        self.actions.late.clear()
        for message in messages:
            self._report(message)
        await self._record(messages)

    async def _carry_out(self, rule: Rule, outcome: Outcome) -> list[Message]:
        if outcome.effect is Effect.APPLY:
            return await self.actions.apply(rule, outcome.message)
        return await self.actions.undo(rule, outcome.message)

    def _report(self, message: Message) -> None:
        level = logging.WARNING if message.level is Level.WARN else logging.INFO
        log.log(level, "hostaware: %s %s%s: %s", message.level.value, message.host,
                f" rule {message.rule}" if message.rule else "", message.text)
        if message.level in (Level.THRESHOLD_MET, Level.CLEARED):
            self.audit({"time": _iso(message.time), "event": "hostaware", "level": message.level.value,
                        "host": message.host, "rule": message.rule, "metric": message.metric,
                        "value": message.value, "action": message.action,
                        "decision": "applied" if message.level is Level.THRESHOLD_MET else "undone"})

    async def _record(self, messages: list[Message]) -> None:
        """Write the messages; publish this host's record when a rule's state changed, else every HEARTBEAT."""
        self._pending += messages
        del self._pending[:-PENDING_MAX]
        record = self.record()
        statuses = {name: state.status for name, state in record.rules.items()}
        publish = statuses != self._published_statuses or time.time() - self._published >= HEARTBEAT - _SLACK
        try:
            if self._pending:
                await asyncio.to_thread(self.store.append, self._pending)
                self._pending = []
            if publish:
                await asyncio.to_thread(self.store.publish, record)
                self._published, self._published_statuses = time.time(), statuses
                self.members = await asyncio.to_thread(self.store.hosts)
        except _STORE_ERRORS as exc:
            log.warning("hostaware: the store: %s (%d message(s) waiting)", exc, len(self._pending))

    def record(self) -> HostRecord:
        reading = self.reading
        return HostRecord(self.host, self.source.url, reading.time if reading else 0.0,
                          dict(reading.metrics) if reading else {}, reading.error if reading else "not read yet",
                          self.evaluator.states())

    def refusing(self) -> list[Rule]:
        return [rule for rule in self.evaluator.acting() if rule.action.kind is ActionKind.REFUSE_CREATE]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"
