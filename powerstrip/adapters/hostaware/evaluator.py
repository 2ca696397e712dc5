"""The rule evaluator: a state machine with no I/O — rules and readings in, messages and effects out.

Per rule, on this host: each due poll either meets the condition (the streak grows), misses it
(the streak ends; a rule that was acting clears), or has no data (the metrics source failed or
lacks the metric). When the streak reaches ``times`` the rule is met: a THRESHOLD_MET message
with the effect APPLY. Its undoing is a CLEARED message with the effect UNDO: when a poll misses
the condition, or the rule is deleted or changed.

Missing data never acts: it counts neither for nor against a rule (the streak restarts, a rule
that acts keeps acting, since clearing a refusal because the source went silent would be acting
on missing data too), and it is said once, as a WARN, until data is back (an INFO).

The driver (``monitor.Monitor``) reads the source when ``next_due`` says, and carries out the
effects; tests drive this class alone with made-up times and readings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from powerstrip.adapters.hostaware.model import Level, Message, Reading, Rule, RuleState, RuleStatus

EARLY = 0.05  # a reading this much before a poll's time still counts for it (timers are not exact)


class Effect(str, Enum):
    NONE = "none"
    APPLY = "apply"
    UNDO = "undo"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A message to record, and what to do about the rule's action (if anything)."""

    message: Message
    rule: Rule | None = None
    effect: Effect = Effect.NONE


@dataclass(slots=True)
class _Track:
    rule: Rule
    next_poll: float
    count: int = 0
    acting: bool = False
    missing: bool = False  # a WARN about this rule's metric was given and data is not back yet
    value: float | None = None


@dataclass(slots=True)
class Evaluator:
    """The rules of one host and where each stands."""

    host: str
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _source_down: bool = False

    def set_rules(self, rules: Iterable[Rule], now: float) -> list[Outcome]:
        """Take the rules as they are now (from the store): added ones start, deleted or changed ones clear."""
        wanted = {rule.name: rule for rule in rules if rule.applies_to(self.host)}
        out: list[Outcome] = []
        for name in list(self._tracks):
            track = self._tracks[name]
            if wanted.get(name) == track.rule:
                continue
            del self._tracks[name]
            why = "changed" if name in wanted else "deleted"
            if track.acting:
                out.append(self._outcome(now, Level.CLEARED, track.rule, f"rule {why}: {track.rule.action} undone",
                                         track.value, Effect.UNDO))
            elif name not in wanted:
                out.append(self._outcome(now, Level.INFO, track.rule, "rule deleted", None))
        for name, rule in wanted.items():
            if name not in self._tracks:
                self._tracks[name] = _Track(rule, now)
                out.append(self._outcome(now, Level.INFO, rule, f"watching {rule.describe()}, every "
                                         f"{rule.polling:g}s, {rule.action} after {rule.times} poll(s) in a row", None))
        return out

    def next_due(self) -> float | None:
        """When the next poll is due (in the readings' clock: wall-clock seconds), None without rules."""
        return min((t.next_poll for t in self._tracks.values()), default=None)

    def observe(self, reading: Reading) -> list[Outcome]:
        """Judge every rule whose poll is due at ``reading.time`` by ``reading``."""
        due = [t for t in self._tracks.values() if t.next_poll <= reading.time + EARLY]
        if not due:
            return []
        out: list[Outcome] = []
        if reading.error is not None:
            if not self._source_down:
                self._source_down = True
                out.append(Outcome(Message(reading.time, Level.WARN, self.host,
                                           f"no metrics: {reading.error} (no rule acts on missing data)")))
        elif self._source_down:
            self._source_down = False
            out.append(Outcome(Message(reading.time, Level.INFO, self.host, "metrics are back")))
        for track in due:
            track.next_poll = max(track.next_poll + track.rule.polling, reading.time + track.rule.polling / 2)
            out.extend(self._judge(track, reading))
        return out

    def states(self) -> dict[str, RuleState]:
        return {name: RuleState(self._status(t), t.count, t.value) for name, t in sorted(self._tracks.items())}

    def acting(self) -> list[Rule]:
        return [t.rule for t in self._tracks.values() if t.acting]

    def _judge(self, track: _Track, reading: Reading) -> list[Outcome]:
        rule = track.rule
        value = None if reading.error is not None else reading.metrics.get(rule.metric)
        if value is None:
            track.count, track.value = 0, None
            if reading.error is not None or track.missing:
                return []  # the source's WARN says it, or this rule's WARN was given
            track.missing = True
            return [self._outcome(reading.time, Level.WARN, rule, f"the source has no metric {rule.metric} "
                                  "(the rule does not act on missing data)", None)]
        out = []
        if track.missing:
            track.missing = False
            out.append(self._outcome(reading.time, Level.INFO, rule, f"metric {rule.metric} is back", value))
        track.value = value
        if rule.met(value):
            track.count = min(track.count + 1, rule.times)
            if track.acting:
                return out
            if track.count >= rule.times:
                track.acting = True
                out.append(self._outcome(reading.time, Level.THRESHOLD_MET, rule,
                                         f"{rule.metric} = {value:g} {rule.op} {rule.threshold:g} "
                                         f"{rule.times} poll(s) in a row: {rule.action}", value, Effect.APPLY))
            elif track.count == 1:
                out.append(self._outcome(reading.time, Level.INFO, rule, f"{rule.metric} = {value:g} {rule.op} "
                                         f"{rule.threshold:g} (1 of {rule.times})", value))
            return out
        track.count = 0
        if track.acting:
            track.acting = False
            out.append(self._outcome(reading.time, Level.CLEARED, rule, f"{rule.metric} = {value:g} no longer "
                                     f"{rule.op} {rule.threshold:g}: {rule.action} undone", value, Effect.UNDO))
        return out

    def _outcome(self, time: float, level: Level, rule: Rule, text: str, value: float | None,
                 effect: Effect = Effect.NONE) -> Outcome:
        message = Message(time, level, self.host, text, rule.name, rule.metric, value, str(rule.action))
        return Outcome(message, rule, effect)

    def _status(self, track: _Track) -> RuleStatus:
        if track.acting:
            return RuleStatus.MET
        if track.missing or self._source_down:
            return RuleStatus.NO_DATA
        return RuleStatus.PENDING if track.count else RuleStatus.OK
