"""Rule documents: the issue's JSON shape is taken as is; anything else is refused with a message."""

from __future__ import annotations

import json

import pytest

from powerstrip.adapters.hostaware.model import ActionKind, InvalidRule, parse_rule, qos_policy

GOOD = {"name": "busy", "metric": "load_one", "op": ">", "threshold": 4, "polling": 5, "times": 3,
        "action": "refuse-create"}


def test_the_issue_example():
    rule = parse_rule(json.dumps(GOOD))
    assert (rule.name, rule.metric, rule.op, rule.threshold, rule.polling, rule.times, rule.host) == \
        ("busy", "load_one", ">", 4.0, 5.0, 3, None)
    assert rule.action.kind is ActionKind.REFUSE_CREATE
    assert parse_rule(rule.document()) == rule


def test_actions():
    assert str(parse_rule({**GOOD, "action": "isolate:front"}).action) == "isolate:front"
    assert parse_rule({**GOOD, "action": "webhook:http://127.0.0.1:8000/x"}).action.argument == "http://127.0.0.1:8000/x"
    assert parse_rule({**GOOD, "host": "198.18.0.2"}).host == "198.18.0.2"


@pytest.mark.parametrize("change, words", [
    ({"op": "=="}, '"op" must be one of'),
    ({"threshold": "4"}, '"threshold" must be a number'),
    ({"threshold": True}, '"threshold" must be a number'),
    ({"polling": 0}, '"polling" is in seconds'),
    ({"times": 0}, '"times" must be a whole number'),
    ({"times": 2.5}, '"times" must be a whole number'),
    ({"name": ""}, '"name" must be'),
    ({"name": "a b"}, '"name" must be'),
    ({"metric": "load one"}, '"metric" must be'),
    ({"host": ""}, '"host" must be'),
    ({"action": "reboot"}, 'unknown "action"'),
    ({"action": "isolate:"}, "invalid network name"),
    ({"action": "webhook:ftp://x"}, "http:// or https://"),
    ({"action": 'qos:{"max-rate": 2}'}, 'qos:<policy JSON>: unknown field(s) max-rate'),
    ({"action": 'qos:{"rate": "2mb"}'}, "qos:<policy JSON>: invalid rate '2mb'"),
    ({"action": 'qos:{"ip-src": "10.0.6.2"}'}, 'qos:<policy JSON>: no action: give "rate"'),
    ({"action": 'qos:{"name": "x", "rate": "2mbit"}'}, 'leave out "name"'),
    ({"action": "qos:2mbit"}, "qos:<policy JSON>: not JSON"),
    ({"action": 'qos:["rate"]'}, "qos:<policy JSON>: expected a JSON object"),
    ({"action": "qos"}, 'unknown "action"'),
    ({"extra": 1}, "unknown field(s) 'extra'"),
])
def test_invalid_rules_are_refused_with_a_message(change, words):
    with pytest.raises(InvalidRule) as caught:
        parse_rule({**GOOD, **change})
    assert words in caught.value.message


def test_missing_fields_and_non_objects():
    with pytest.raises(InvalidRule, match="missing field"):
        parse_rule({"name": "x"})
    with pytest.raises(InvalidRule, match="JSON object"):
        parse_rule("[1, 2]")
    with pytest.raises(InvalidRule, match="JSON object"):
        parse_rule("{not json")


def test_a_qos_action_keeps_its_policy_json_and_round_trips() -> None:
    text = 'qos:{"ip-src": "10.0.6.0/24", "rate": "2mbit", "dscp": "AF41"}'
    rule = parse_rule({**GOOD, "action": text})
    assert rule.action.kind is ActionKind.QOS and str(rule.action) == text
    assert parse_rule(rule.document()) == rule
    policy = qos_policy(rule.action.argument)
    assert policy.rate is not None and policy.rate.bits == 2_000_000 and policy.dscp == 34
