"""The evaluator alone: made-up times and readings in, messages and effects out (no I/O)."""

from __future__ import annotations

from powerstrip.adapters.hostaware.evaluator import Effect, Evaluator, Outcome
from powerstrip.adapters.hostaware.model import Level, Reading, RuleStatus, parse_rule

BUSY = parse_rule({"name": "busy", "metric": "load_one", "op": ">", "threshold": 4, "polling": 5, "times": 3,
                   "action": "refuse-create"})


def levels(outcomes: list[Outcome]) -> list[str]:
    return [o.message.level.value for o in outcomes]


def poll(ev: Evaluator, t: float, **metrics: float) -> list[Outcome]:
    return ev.observe(Reading(t, metrics))


def test_met_times_in_a_row_then_cleared():
    ev = Evaluator("h1")
    assert levels(ev.set_rules([BUSY], 0)) == ["INFO"]
    assert ev.next_due() == 0
    assert levels(poll(ev, 0, load_one=5)) == ["INFO"]  # 1 of 3
    assert ev.states()["busy"].status is RuleStatus.PENDING
    assert poll(ev, 5, load_one=6) == []
    out = poll(ev, 10, load_one=7)
    assert levels(out) == ["THRESHOLD_MET"] and out[0].effect is Effect.APPLY
    assert out[0].message.value == 7 and out[0].message.rule == "busy" and out[0].message.action == "refuse-create"
    assert [r.name for r in ev.acting()] == ["busy"]
    assert poll(ev, 15, load_one=9) == []  # still met: no new message, no second action
    out = poll(ev, 20, load_one=1)
    assert levels(out) == ["CLEARED"] and out[0].effect is Effect.UNDO
    assert ev.acting() == [] and ev.states()["busy"].status is RuleStatus.OK


def test_a_miss_restarts_the_streak():
    ev = Evaluator("h1")
    ev.set_rules([BUSY], 0)
    poll(ev, 0, load_one=5)
    poll(ev, 5, load_one=5)
    assert poll(ev, 10, load_one=4) == []  # 4 is not > 4
    poll(ev, 15, load_one=5)
    poll(ev, 20, load_one=5)
    assert levels(poll(ev, 25, load_one=5)) == ["THRESHOLD_MET"]


def test_polls_only_when_due():
    ev = Evaluator("h1")
    ev.set_rules([BUSY], 0)
    poll(ev, 0, load_one=5)
    assert ev.next_due() == 5
    assert poll(ev, 2, load_one=5) == [] and ev.states()["busy"].count == 1  # not due: not counted
    assert poll(ev, 4.97, load_one=5) == [] and ev.states()["busy"].count == 2  # within EARLY of its time


def test_missing_data_never_acts_and_warns_once():
    ev = Evaluator("h1")
    ev.set_rules([BUSY], 0)
    out = ev.observe(Reading(0, error="gmond 127.0.0.1:1: connection refused"))
    assert levels(out) == ["WARN"] and all(o.effect is Effect.NONE for o in out)
    assert ev.observe(Reading(5, error="still down")) == []
    assert ev.states()["busy"].status is RuleStatus.NO_DATA
    assert levels(poll(ev, 10, other=1)) == ["INFO", "WARN"]  # source back, but no load_one
    assert poll(ev, 15, other=1) == []
    assert levels(poll(ev, 20, load_one=5)) == ["INFO", "INFO"]  # metric back; 1 of 3
    assert ev.acting() == []


def test_missing_data_keeps_an_acting_rule_acting():
    ev = Evaluator("h1")
    ev.set_rules([BUSY], 0)
    for t in (0, 5, 10):
        poll(ev, t, load_one=5)
    out = ev.observe(Reading(15, error="down"))
    assert all(o.effect is Effect.NONE for o in out)
    assert [r.name for r in ev.acting()] == ["busy"]
    assert levels(poll(ev, 20, load_one=1)) == ["INFO", "CLEARED"]


def test_deleting_or_changing_an_acting_rule_clears_it():
    ev = Evaluator("h1")
    ev.set_rules([BUSY], 0)
    for t in (0, 5, 10):
        poll(ev, t, load_one=5)
    changed = parse_rule({**BUSY.document(), "threshold": 8})
    out = ev.set_rules([changed], 12)
    assert levels(out) == ["CLEARED", "INFO"] and out[0].effect is Effect.UNDO
    assert ev.acting() == []
    out = ev.set_rules([], 13)
    assert levels(out) == ["INFO"] and out[0].message.text == "rule deleted"


def test_rules_for_other_hosts_are_not_judged_here():
    ev = Evaluator("h1")
    other = parse_rule({**BUSY.document(), "name": "b", "host": "h2"})
    mine = parse_rule({**BUSY.document(), "name": "a", "host": "h1", "times": 1})
    ev.set_rules([other, mine], 0)
    assert list(ev.states()) == ["a"]
    assert levels(poll(ev, 0, load_one=5)) == ["THRESHOLD_MET"]


def test_lower_than_rules():
    idle = parse_rule({"name": "idle", "metric": "cpu_idle", "op": "<=", "threshold": 10, "polling": 1, "times": 2,
                       "action": "webhook:http://127.0.0.1:9/hook"})
    ev = Evaluator("h1")
    ev.set_rules([idle], 0)
    poll(ev, 0, cpu_idle=10)
    out = poll(ev, 1, cpu_idle=3)
    assert levels(out) == ["THRESHOLD_MET"] and out[0].message.level is Level.THRESHOLD_MET
