"""Rules, readings and messages of host-aware rules, and the validation of a rule document.

A rule document is exactly the issue's JSON::

    {"name": "busy", "metric": "load_one", "op": ">", "threshold": 4,
     "polling": 5, "times": 3, "host": "h1", "action": "refuse-create"}

``host`` is optional (every monitored host). Anything else is refused with a message naming the
field, so a typo never becomes a rule that silently never fires.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from powerstrip.adapters.net.model import InvalidInput
from powerstrip.adapters.qos.policy import Policy, parse_document

OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$")
_FIELDS = ("name", "metric", "op", "threshold", "polling", "times", "host", "action")
MAX_POLLING = 86400
MAX_TIMES = 1000
MAX_MESSAGES = 10_000  # messages a store keeps (store.py)
LOST_AFTER = 15.0  # seconds without a heartbeat; the monitor publishes at least every HEARTBEAT
HEARTBEAT = 5.0


class HostAwareError(Exception):
    """A user's error (a bad rule, an unknown name) or an unreachable store, with a message to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRule(HostAwareError):
    pass


class NotFound(HostAwareError):
    pass


class Conflict(HostAwareError):
    pass


class StoreUnavailable(HostAwareError):
    pass


class ActionKind(str, Enum):
    REFUSE_CREATE = "refuse-create"
    QOS = "qos"
    ISOLATE = "isolate"
    WEBHOOK = "webhook"


ACTIONS_HELP = "refuse-create, qos:<policy JSON>, isolate:<network> or webhook:<url>"
QOS_UNNAMED = "hostaware-rule"  # the name a qos: action's policy is checked under (the action names it)


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule does while it holds: ``refuse-create``, ``qos:<policy JSON>``, ``isolate:<network>``
    or ``webhook:<url>``."""

    kind: ActionKind
    argument: str = ""

    def __str__(self) -> str:
        return self.kind.value if not self.argument else f"{self.kind.value}:{self.argument}"


def parse_action(text: Any) -> Action:
    if not isinstance(text, str) or not text:
        raise InvalidRule(f'"action" must be a string: {ACTIONS_HELP}')
    if text == ActionKind.REFUSE_CREATE.value:
        return Action(ActionKind.REFUSE_CREATE)
    kind, sep, argument = text.partition(":")
    if kind == ActionKind.QOS.value and sep:
        qos_policy(argument)
        return Action(ActionKind.QOS, argument.strip())
    if kind == ActionKind.ISOLATE.value and sep:
        if not _NAME.match(argument):
            raise InvalidRule(f'"action" isolate:<network>: invalid network name {argument!r}')
        return Action(ActionKind.ISOLATE, argument)
    if kind == ActionKind.WEBHOOK.value and sep:
        parts = urlsplit(argument)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRule(f'"action" webhook:<url>: expected an http:// or https:// URL, not {argument!r}')
        return Action(ActionKind.WEBHOOK, argument)
    raise InvalidRule(f'unknown "action" {text!r}: expected {ACTIONS_HELP}')


def qos_policy(argument: str) -> Policy:
    """The policy of a ``qos:<policy JSON>`` action, checked by the QoS module's own rules (issue 13's
    fields, units and actions) under the placeholder name ``QOS_UNNAMED``: the action names the
    policy it stores after the rule and the host (``qos_action.policy_name``), so the JSON has no ``name``.
    Its addresses and network are checked against the networks by ``rules add``, which can read them."""
    what = '"action" qos:<policy JSON>'
    try:
        document = json.loads(argument)
    except ValueError as exc:
        raise InvalidRule(f'{what}: not JSON ({exc}), e.g. qos:{{"rate": "2mbit"}}') from None
    if not isinstance(document, dict):
        raise InvalidRule(f'{what}: expected a JSON object, e.g. qos:{{"rate": "2mbit"}}')
    if "name" in document:
        raise InvalidRule(f'{what}: leave out "name": the policy is named after the rule and the host '
                          "(hostaware-RULE-HOST)")
    try:
        return parse_document({"name": QOS_UNNAMED, **document})
    except InvalidInput as exc:
        detail = exc.message.replace(f"invalid policy {QOS_UNNAMED}: ", "").replace("invalid policy: ", "")
        raise InvalidRule(f"{what}: {detail}") from None


@dataclass(frozen=True, slots=True)
class Rule:
    """A condition on one metric that must hold ``times`` polls in a row (``polling`` s apart) to act."""

    name: str
    metric: str
    op: str
    threshold: float
    polling: float
    times: int
    action: Action
    host: str | None = None

    def met(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def applies_to(self, host: str) -> bool:
        return self.host is None or self.host == host

    def describe(self) -> str:
        return f"{self.metric} {self.op} {_number(self.threshold)}"

    def document(self) -> dict[str, Any]:
        """The rule as its JSON document (what ``rules add`` took and ``rules list`` shows)."""
        doc: dict[str, Any] = {"name": self.name, "metric": self.metric, "op": self.op,
                               "threshold": self.threshold, "polling": self.polling, "times": self.times}
        if self.host is not None:
            doc["host"] = self.host
        doc["action"] = str(self.action)
        return doc


def parse_rule(document: Any) -> Rule:
    """Validate a rule document (a JSON text or the decoded object); raises ``InvalidRule``."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise InvalidRule(f"a rule is a JSON object: {exc}") from None
    if not isinstance(document, Mapping):
        raise InvalidRule("a rule is a JSON object with name, metric, op, threshold, polling, times and action")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise InvalidRule(f"unknown field(s) {', '.join(map(repr, unknown))}: a rule has {', '.join(_FIELDS)}")
    missing = [f for f in _FIELDS if f != "host" and f not in document]
    if missing:
        raise InvalidRule(f"missing field(s): {', '.join(missing)}")
    name, metric, op = document["name"], document["metric"], document["op"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRule(f'"name" must be 1-64 letters, digits, ".", "_" or "-" (starting with a letter or digit), not {name!r}')
    if not isinstance(metric, str) or not _METRIC.match(metric):
        raise InvalidRule(f'"metric" must be a Ganglia metric name such as load_one or cpu_idle, not {metric!r}')
    if op not in OPS:
        raise InvalidRule(f'"op" must be one of {", ".join(OPS)}, not {op!r}')
    threshold = _real(document["threshold"], "threshold")
    polling = _real(document["polling"], "polling")
    if not 1 <= polling <= MAX_POLLING:
        raise InvalidRule(f'"polling" is in seconds, 1 to {MAX_POLLING}, not {document["polling"]!r}')
    times = document["times"]
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        raise InvalidRule(f'"times" must be a whole number of polls, 1 to {MAX_TIMES}, not {times!r}')
    host = document.get("host")
    if host is not None and (not isinstance(host, str) or not host or len(host) > 253 or any(c.isspace() for c in host)):
        raise InvalidRule(f'"host" must be a host name or address (or left out for every host), not {host!r}')
    return Rule(name, metric, op, threshold, polling, times, parse_action(document["action"]), host)


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRule(f'"{name}" must be a number, not {value!r}')
    return float(value)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


class Level(str, Enum):
    INFO = "INFO"
    WARN = "WARN"
    THRESHOLD_MET = "THRESHOLD_MET"
    CLEARED = "CLEARED"


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of the messages view: what happened on ``host``, about ``rule`` (if any)."""

    time: float
    level: Level
    host: str
    text: str
    rule: str | None = None
    metric: str | None = None
    value: float | None = None
    action: str | None = None
    id: int = 0  # given by the store, increasing

    def document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["level"] = self.level.value
        return doc

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Message:
        return Message(float(doc["time"]), Level(doc["level"]), str(doc["host"]), str(doc["text"]), doc.get("rule"),
                       doc.get("metric"), doc.get("value"), doc.get("action"), int(doc.get("id", 0)))


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll of a host's metrics source: the values, or why there are none (``error``)."""

    time: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None


class RuleStatus(str, Enum):
    OK = "ok"
    PENDING = "pending"  # met, fewer than ``times`` polls in a row so far
    MET = "met"  # acting
    NO_DATA = "no-data"


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where a rule stands on a host, as ``hosts list`` and ``/hosts`` show it."""

    status: RuleStatus
    count: int = 0
    value: float | None = None


@dataclass(frozen=True, slots=True)
class HostRecord:
    """What a host published: its source, last metrics, rule states; ``lost`` when it stopped publishing."""

    name: str
    source: str
    updated: float
    metrics: Mapping[str, float]
    error: str | None
    rules: Mapping[str, RuleState]
    lost: bool = False

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "updated": self.updated, "lost": self.lost,
                "error": self.error, "metrics": dict(self.metrics),
                "rules": {name: {"status": s.status.value, "count": s.count, "value": s.value}
                          for name, s in self.rules.items()}}

    @staticmethod
    def from_document(doc: Mapping[str, Any], lost: bool = False) -> HostRecord:
        rules = {name: RuleState(RuleStatus(s["status"]), int(s.get("count", 0)), s.get("value"))
                 for name, s in (doc.get("rules") or {}).items()}
        return HostRecord(str(doc["name"]), str(doc.get("source", "")), float(doc.get("updated", 0)),
                          {k: float(v) for k, v in (doc.get("metrics") or {}).items()}, doc.get("error"), rules,
                          lost or bool(doc.get("lost")))
