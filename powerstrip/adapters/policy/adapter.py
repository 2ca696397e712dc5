"""The ``policy`` built-in, written with the SDK users get (``powerstrip.sdk``): one pre-hook judges every
request (rules, powers, rate limit, concurrency cap), stamps ownership and filters lists; a post-hook redacts
and adds warn-mode warnings to a create's ``Warnings``. Warn-mode warnings reach the client on every endpoint
as ``Warning`` headers (``request.warn``); a concurrency slot is given back by the exchange's end
(``request.on_end``).

adapters.yml::

    endpoints:
      "* /*": {pre: [policy]}
      "POST /*/containers/create": {post: [policy]}     # warn-mode warnings in the answer
      "GET /*/containers/*/json": {post: [policy]}      # redaction
    adapters:
      policy: {url: "builtin:policy", rules: policy.yml}

It rewrites requests (owner labels, list filters), so it is a ``mutating`` adapter; name it first in a chain
so that later adapters see the stamped request. See docs/policy.md.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.net.docker_api import DockerAPI
from powerstrip.adapters.policy.clients import profile_for
from powerstrip.adapters.policy.concurrency import Slots, long_lived
from powerstrip.adapters.policy.engine import UNREADABLE, decide, decide_for, path_decision
from powerstrip.adapters.policy.loader import PolicyError
from powerstrip.adapters.policy.model import Concurrency, Decision, Policy, Profile, RateLimit
from powerstrip.adapters.policy.mutations import mutate_create, redacted
from powerstrip.adapters.policy.ownership import (
    check_owner,
    check_query_owner,
    check_references,
    scope_lists,
    stamp_build,
    stamp_owner,
    stamped,
)
from powerstrip.adapters.policy.paths import SERVICE_SPEC, policy_path
from powerstrip.adapters.policy.powers import data_body
from powerstrip.adapters.policy.ratelimit import RateLimiter
from powerstrip.adapters.policy.service_networks import check_service_networks
from powerstrip.adapters.policy.source import PolicySource
from powerstrip.hooks.model import RELAY, PathVerdict, Peer
from powerstrip.observability.extensions import EXTENSIONS, View
from powerstrip.sdk import Adapter, Reject, Request, Response

audit = logging.getLogger("powerstrip.policy.audit")
log = logging.getLogger("powerstrip.policy")

REMEMBERED_WARNINGS = 1024
FAST_DECISIONS = 4096  # cached peers and path decisions, each; cleared when full (new connections, queries)
_INSPECT = re.compile(r"/containers/[^/]+/json")


def create_adapter(context: BuiltinContext) -> Adapter:
    if not context.rules:
        raise PolicyError([f"adapter {context.name!r}: builtin:policy needs 'rules: FILE' in adapters.yml"])
    adapter = PolicyAdapter(context.name, PolicySource(context.rules), DockerAPI(context.docker_url, timeout=10.0))
    EXTENSIONS.add(adapter)  # its gauges on the metrics listener, until it is closed
    return adapter


class PolicyAdapter(Adapter):
    """An SDK adapter with the policy's state: the source, the rate buckets, the warnings owed to responses."""

    def __init__(self, name: str, source: PolicySource, docker: DockerAPI | None) -> None:
        super().__init__(name)
        self.source = source
        self.docker = docker
        self.limiter = RateLimiter()
        self.slots = Slots()
        self._limited: dict[tuple[str, str], int] = {}  # (profile, "rate_limit"/"concurrency") -> refusals
        self._untracked: set[str] = set()  # profiles whose cap was found impossible to keep (logged once)
        self._warnings: OrderedDict[str, str] = OrderedDict()
        self._fast_policy: Policy | None = None  # the policy the fast-path caches below were made for
        self._fast_profiles: dict[Peer, Profile | None] = {}
        self._fast_decisions: dict[tuple[str, str, str], Decision | None] = {}
        self._fast_entries: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {}  # their audit entries
        self.pre("* /*")(self.judge)
        self.post("POST /*/containers/create", "GET /*/containers/*/json")(self.answer)

    def reads_body(self, method: str, target: str) -> bool:
        """``HeadJudge``: the bodies that are data for the daemon (a build context, an archive, an image or plugin
        tarball) are never judged, so the gateway streams them instead of buffering them for this hook."""
        return not data_body(method, policy_path(target))

    def judge_path(self, method: str, target: str, peer: Peer) -> PathVerdict | None:
        """The gateway's fast path (hooks.model.PathJudge): a decision the path alone makes — an allowed
        request whose endpoint carries no powers, or a denial by rule — is taken here, cached per profile,
        method and target, and the request is relayed without a hook call (or refused before its body is
        read). Whatever needs the body, ownership, mutations, a rate limit or a warn/audit mode goes to ``judge``."""
        policy = self.source.current()
        if policy is not self._fast_policy:
            self._fast_policy, self._fast_profiles, self._fast_decisions, self._fast_entries = policy, {}, {}, {}
        try:
            profile = self._fast_profiles[peer]
        except KeyError:
            if len(self._fast_profiles) >= FAST_DECISIONS:  # every TCP connection is a peer of its own
                self._fast_profiles.clear()
            profile = self._fast_profiles[peer] = profile_for(policy, peer)
        if profile is None or profile.owner is not None or profile.rate_limit is not None \
                or profile.concurrency is not None or profile.labels or profile.env or profile.image_remap:
            return None
        key = (profile.name, method, target)
        try:
            decision = self._fast_decisions[key]
        except KeyError:
            if len(self._fast_decisions) >= FAST_DECISIONS:
                self._fast_decisions.clear()
            decision = self._fast_decisions[key] = path_decision(profile, method, target)
        if decision is None:
            return None
        self._record(None, method, target, decision, key)
        return RELAY if decision.allowed else PathVerdict(403, _message(decision))

    async def judge(self, request: Request) -> None:
        """The full decision, with the body: mutations first (the judged body is the one that runs), then the
        rules and powers, the rate limit and concurrency cap, ownership."""
        policy = self.source.current()
        path = policy_path(request.target)
        profile = profile_for(policy, request.peer)
        body: Any = None
        if request.body:
            body = request.json if isinstance(request.json, (dict, list)) else UNREADABLE
        if profile is not None and isinstance(body, dict) and request.method == "POST":
            mutated = mutate_create(profile, path, body)
            if mutated is not body:
                request.json = body = mutated
        query = request.query  # powers in a query: a build's networkmode and remote, an import's fromSrc
        if profile is None:
            decision = decide(policy, request.peer, request.method, request.target, body, query)
        else:
            decision = decide_for(profile, request.method, request.target, body, query)
        if decision.refused:
            self._record(request.uid, request.method, request.target, decision)
            raise Reject(403, _message(decision))
        limited = self._over_limit(profile, request, path) if profile is not None and not request.dry_run else None
        if limited is None or not decision.allowed:  # one entry per decision: an allowed one is superseded
            self._record(request.uid, request.method, request.target, decision)
        if not decision.allowed and decision.mode == "warn":
            self._warn(request, path, _message(decision))
        if limited is not None:
            self._record(request.uid, request.method, request.target, limited)
            if limited.refused:
                raise Reject(429, limited.reason)
            if limited.mode == "warn":
                self._warn(request, path, limited.reason)
        if profile is None:
            return
        if self.docker is not None and request.method == "POST" and SERVICE_SPEC.fullmatch(path) \
                and isinstance(body, dict) and "network" not in profile.powers.host_namespaces \
                and not profile.powers.unrestricted:
            try:
                await check_service_networks(self.docker, body)
            except Reject as refused:
                if decision.mode == "enforce" or refused.status != 403:
                    raise
                if decision.mode == "warn":
                    self._warn(request, path, refused.message)
        if profile.owner is not None:
            if self.docker is not None:
                await check_owner(self.docker, policy, profile, request.method, path)
                await check_query_owner(self.docker, policy, profile, request.method, path, query)
                await check_references(self.docker, policy, profile, path, body if isinstance(body, dict) else {},
                                       query)
            scope_lists(policy, profile, request, path)
            if request.method == "POST" and stamped(path) and isinstance(body, dict):
                request.json = stamp_owner(policy, profile, body)
            elif request.method == "POST" and path == "/build":
                stamp_build(policy, profile, request)

    def _over_limit(self, profile: Profile, request: Request, path: str) -> Decision | None:
        """The rate limit, then the concurrency cap: None when within both, else the decision that the request is
        over one of them (refused in enforce mode; let through, warned or recorded in warn and audit mode).

        A request the cap counts takes a slot, given back by the exchange's end callback; in warn or audit
        mode it takes one over the cap too, so the count stays the truth."""
        rate = profile.rate_limit
        if rate is not None and not self.limiter.take(profile.name, rate):
            return self._limit(profile, rate, f"policy: profile {profile.name!r} is over its rate limit "
                                              f"({rate.rate:g}/s, burst {rate.burst}); try again shortly")
        cap = profile.concurrency
        if cap is None or (not cap.streams and long_lived(path, request.query)):
            return None
        over = self.slots.in_use(profile.name) >= cap.max
        if over and profile.mode == "enforce":
            return self._limit(profile, cap, f"policy: profile {profile.name!r} is at its concurrency cap ({cap.max} "
                                             f"request(s) at a time{', streams included' if cap.streams else ''}); "
                                             "try again when one of them ends")
        release = self.slots.take(profile.name)
        if not request.on_end(release):  # served over HTTP: nothing will say when the request ends
            release()
            if profile.name not in self._untracked:
                self._untracked.add(profile.name)
                log.error("profile %r: its concurrency cap cannot be kept: the policy is not run in-process by the "
                          "gateway (served over HTTP), so it never learns when a request ends; not applied",
                          profile.name)
            return None
        if over:
            return self._limit(profile, cap, f"policy: profile {profile.name!r} is over its concurrency cap "
                                             f"({cap.max} request(s) at a time)")
        return None

    def _limit(self, profile: Profile, limit: RateLimit | Concurrency, reason: str) -> Decision:
        kind = "rate_limit" if isinstance(limit, RateLimit) else "concurrency"
        self._limited[(profile.name, kind)] = self._limited.get((profile.name, kind), 0) + 1
        return Decision(False, profile, None, reason, profile.mode, limit=limit)

    def _warn(self, request: Request, path: str, message: str) -> None:
        """A warn-mode decision: a ``Warning`` header on whatever the client gets, and for a create the
        answer's ``Warnings`` too (the docker CLI prints those)."""
        request.warn(f"{message} (warn mode: not enforced)")
        if path == "/containers/create":
            self._remember_warning(request.uid, message)

    async def answer(self, request: Request, response: Response) -> None:
        """Warn-mode warnings into a create's answer; redaction of a container inspect."""
        warning = self._warnings.pop(request.uid, None)
        if warning and response.code < 300 and isinstance(response.json, dict):
            response.json = {**response.json, "Warnings": [*(response.json.get("Warnings") or []), warning]}
        if request.method == "GET" and response.code == 200 and _INSPECT.fullmatch(policy_path(request.target)):
            profile = profile_for(self.source.current(), request.peer)
            if profile is not None and (profile.redact.env or profile.redact.mounts):
                response.json = redacted(response.json, profile)

    def _record(self, uid: str | None, method: str, target: str, decision: Decision,
                fast_key: tuple[str, str, str] | None = None) -> None:
        """Every decision, with the rule that made it: a line in ``--audit-log`` (``"event": "policy"``) when the
        gateway has one, and on the ``powerstrip.policy.audit`` logger (denials at WARNING, audit-mode ones at
        INFO, allowed requests at DEBUG). ``uid`` is None on the fast path (no exchange uid is made there)."""
        if decision.allowed:
            level = logging.DEBUG
        else:
            level = logging.WARNING if decision.mode != "audit" else logging.INFO
        to_log, to_audit = audit.isEnabledFor(level), EXTENSIONS.auditing
        if not (to_log or to_audit):
            return
        if fast_key is not None:  # a fast-path decision: the same entry every time, made once
            made = self._fast_entries.get(fast_key)
            if made is None:
                if len(self._fast_entries) >= FAST_DECISIONS:
                    self._fast_entries.clear()
                entry = self._entry(uid, method, target, decision)
                made = self._fast_entries[fast_key] = (entry, json.dumps(entry, separators=(",", ":")))
            entry, line = made
        else:
            entry = self._entry(uid, method, target, decision)
            line = json.dumps(entry, separators=(",", ":")) if to_log else ""
        if to_log:
            audit.log(level, "%s", line)
        if to_audit:
            EXTENSIONS.audit({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                              "event": "policy", **entry})

    @staticmethod
    def _entry(uid: str | None, method: str, target: str, decision: Decision) -> dict[str, Any]:
        if decision.limit is not None:
            rule = decision.limit.where
        else:
            rule = decision.rule.where if decision.rule else "default deny"
        entry = {
            "uid": uid, "method": method, "path": policy_path(target),
            "profile": decision.profile.name if decision.profile else None,
            "rule": rule, "decision": "allow" if decision.allowed else "deny", "mode": decision.mode,
            "enforced": decision.refused, "reason": decision.reason,
        }
        if decision.limit is not None:
            entry["limit"] = str(decision.limit)
        if decision.violations:
            entry["violations"] = list(decision.violations)
        return entry

    def _remember_warning(self, uid: str, warning: str) -> None:
        self._warnings[uid] = f"powerstrip policy (warn mode, not enforced): {warning}"
        while len(self._warnings) > REMEMBERED_WARNINGS:
            self._warnings.popitem(last=False)

    # --- the metrics listener (observability.extensions) -------------------------------------------------

    def views(self) -> dict[str, View]:
        return {}

    def metric_families(self) -> list[Metric]:
        in_progress = GaugeMetricFamily("powerstrip_policy_requests_in_progress", "Requests a profile's concurrency "
                                        "cap counts, in progress now.", labels=["profile"])
        for profile, count in sorted(self.slots.counts().items()):
            in_progress.add_metric([profile], float(count))
        limited = CounterMetricFamily("powerstrip_policy_limited", "Requests over a profile's rate limit or "
                                      "concurrency cap (refused in enforce mode).", labels=["profile", "limit"])
        for (profile, kind), count in sorted(self._limited.items()):
            limited.add_metric([profile, kind], float(count))
        return [in_progress, limited]

    async def close(self) -> None:
        EXTENSIONS.remove(self)
        if self.docker is not None:
            await self.docker.close()


def _message(decision: Decision) -> str:
    who = f"profile {decision.profile.name!r}" if decision.profile else "no profile"
    return f"policy ({who}): {decision.reason}"
