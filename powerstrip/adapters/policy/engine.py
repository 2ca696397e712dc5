"""The decision for one request: which profile, which rule, which body violations, and why.

Pure: no I/O, no clock. The adapter, ``policy explain`` and the tests all call ``decide``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from powerstrip.adapters.policy.clients import describe_peer, profile_for
from powerstrip.adapters.policy.model import Decision, Policy, Profile
from powerstrip.adapters.policy.paths import policy_path
from powerstrip.adapters.policy.powers import checker_for
from powerstrip.hooks.model import Peer


class Unreadable:
    """A body a body rule must judge but that is not a JSON object: refused, never guessed at."""


UNREADABLE = Unreadable()


def decide(policy: Policy, peer: Peer, method: str, target: str, body: Any = None,
           query: Mapping[str, list[str]] | None = None) -> Decision:
    """``body`` is the canonical decoded body (None when there is none, UNREADABLE when it is not JSON)."""
    profile = profile_for(policy, peer)
    if profile is None:
        return Decision(False, None, None, f"no policy profile matches this client ({describe_peer(peer)})")
    return decide_for(profile, method, target, body, query or {})


def decide_for(profile: Profile, method: str, target: str, body: Any, query: Mapping[str, list[str]]) -> Decision:
    path = policy_path(target)
    rule = next((rule for rule in profile.rules if rule.matches(method, path)), None)
    if rule is None:
        return Decision(False, profile, None, f"no rule of profile {profile.name!r} allows {method} {path}",
                        profile.mode)
    mode = rule.mode or profile.mode
    if rule.action == "deny":
        reason = rule.reason or f"{method} {path} is denied by profile {profile.name!r} ({rule.where})"
        return Decision(False, profile, rule, reason, mode)
    check = None if profile.powers.unrestricted else checker_for(method, path)
    if check is not None:
        if not check.reads_body:
            body = None
        elif isinstance(body, Unreadable) or not isinstance(body, (Mapping, type(None))):
            return Decision(False, profile, rule, f"the body of {method} {path} is not a JSON object, so the "
                            "policy cannot judge it", mode)
        violations = tuple(check.check(body or {}, query, profile.powers))
        if violations:
            return Decision(False, profile, rule, "; ".join(violations) + f" (profile {profile.name!r})",
                            profile.mode, violations)
    return Decision(True, profile, rule, rule.reason or f"allowed by {rule.where}", mode)


def path_decision(profile: Profile, method: str, target: str) -> Decision | None:
    """The decision the path alone makes for ``profile``, or None when the body must be seen (an allowed
    endpoint that carries powers) or a denial is not enforced (warn/audit: the hook adds the warning)."""
    path = policy_path(target)
    rule = next((rule for rule in profile.rules if rule.matches(method, path)), None)
    if rule is not None and rule.action == "allow" and not profile.powers.unrestricted and checker_for(method, path):
        return None
    decision = decide_for(profile, method, target, None, {})
    return decision if decision.allowed or decision.refused else None
