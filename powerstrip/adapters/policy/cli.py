"""``powerstrip policy``: check a rules file, explain a decision, turn socket-proxy variables into rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from powerstrip.adapters.policy.concurrency import long_lived
from powerstrip.adapters.policy.engine import UNREADABLE, decide
from powerstrip.adapters.policy.loader import PolicyError, load_policy, parse_policy
from powerstrip.adapters.policy.model import ClientMatch, Policy, Powers, Profile
from powerstrip.adapters.policy.paths import policy_path
from powerstrip.adapters.policy.socket_proxy import rules_from_env
from powerstrip.adapters.policy.source import SOCKET_PROXY_ENV
from powerstrip.config.loader import ConfigError, find_config_path, load_config
from powerstrip.config.model import AdapterSpec, Config, EndpointSpec
from powerstrip.hooks.model import Peer, parse_peer
from powerstrip.http.params import AmbiguousRequest, query_params


def socket_proxy_config() -> Config:
    """``serve --socket-proxy-env``: every request through ``builtin:policy`` with rules from the environment."""
    spec = AdapterSpec("socket-proxy", "builtin:policy", rules=SOCKET_PROXY_ENV)
    return Config(path=None, endpoints=(EndpointSpec("* /*", pre=("socket-proxy",)),), adapters={spec.name: spec})


@click.group("policy")
def policy_group() -> None:
    """The built-in policy adapter's rules files (docs/policy.md)."""


@policy_group.command("from-env")
def from_env() -> None:
    """Print the rules file equivalent to this environment's docker-socket-proxy variables
    (CONTAINERS, POST, ALLOW_START, ...), the policy `serve --socket-proxy-env` enforces."""
    click.echo(rules_from_env(os.environ), nl=False)


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE and print, per profile, who it is for and what it may do."""
    policy = _load(file)
    for profile in policy.profiles:
        click.echo(_describe_profile(profile))
    click.echo(f"{file}: OK, {len(policy.profiles)} profile(s); clients that match none are refused")


@policy_group.command("explain")
@click.argument("method")
@click.argument("path")
@click.option("--body", "body_file", type=click.Path(exists=True, dir_okay=False), help="The request body (JSON).")
@click.option("--as", "identity", multiple=True, metavar="KEY=VALUE",
              help="The client: uid=N, gid=N, addr=IP, cn=NAME, san=DNS:x, listener=unix:///path (repeatable).")
@click.option("--rules", "rules", type=click.Path(dir_okay=False),
              help="The rules file (default: the builtin:policy adapter's in adapters.yml).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="adapters.yml to take the rules from.")
@click.option("--socket-proxy-env", is_flag=True, help="Judge with the rules of the socket-proxy environment.")
def explain(method: str, path: str, body_file: str | None, identity: tuple[str, ...], rules: str | None,
            config_path: str | None, socket_proxy_env: bool) -> None:
    """Which profile and which rule decide METHOD PATH, and why. Exits 1 when the request would be refused."""
    if socket_proxy_env:
        policy = parse_policy(rules_from_env(os.environ), "socket-proxy environment")
    else:
        policy = _load(rules or _rules_from_config(config_path))
    body: Any = None
    if body_file is not None:
        try:
            body = json.loads(Path(body_file).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            body = UNREADABLE
    try:
        query = query_params(path)
    except AmbiguousRequest as exc:
        click.echo(f"result:  refused by the gateway before any rule (400): {exc}")
        raise SystemExit(1) from None
    decision = decide(policy, _peer(identity), method.upper(), path, body, query)
    click.echo(f"profile: {decision.profile.name if decision.profile else '(none matches)'}")
    click.echo(f"rule:    {_rule_text(decision)}")
    verdict = "allow" if decision.allowed else "deny"
    mode = f" (mode {decision.mode}: {'refused' if decision.refused else 'let through, recorded'})"
    click.echo(f"result:  {verdict}{mode if not decision.allowed else ''}")
    click.echo(f"why:     {decision.reason}")
    for violation in decision.violations:
        click.echo(f"  - {violation}")
    limits = _limits_text(decision.profile, method.upper(), path) if decision.profile else ""
    if limits:
        click.echo(f"limits:  {limits}")
    raise SystemExit(1 if decision.refused else 0)


def _limits_text(profile: Profile, method: str, path: str) -> str:
    """The profile's rate limit and cap, and whether this request counts against the cap (they depend on
    traffic, so explain cannot say whether they would refuse it)."""
    parts = [str(profile.rate_limit)] if profile.rate_limit else []
    cap = profile.concurrency
    if cap is not None:
        streaming = long_lived(policy_path(path), query_params(path))
        counts = "counts" if cap.streams or not streaming else "is a long-lived stream, not counted"
        parts.append(f"{cap}: this request {counts}")
    return "; ".join(parts)


def _rule_text(decision: Any) -> str:
    rule = decision.rule
    if rule is None:
        return "(none: default deny)"
    return f"{rule.action} {', '.join(p.text for p in rule.patterns)}  [{rule.where}]"


def _load(file: str) -> Policy:
    try:
        return load_policy(Path(file))
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None


def _rules_from_config(config_path: str | None) -> str:
    try:
        path = find_config_path(config_path, os.environ)
        config = load_config(path) if path is not None else None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    specs = [spec for spec in (config.adapters.values() if config else ()) if spec.builtin == "policy" and spec.rules]
    if not specs:
        raise click.UsageError("no rules file: give --rules FILE, or an adapters.yml with a builtin:policy adapter")
    return str(specs[0].rules)


def _peer(identity: tuple[str, ...]) -> Peer:
    try:
        return parse_peer(identity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from None


def _describe_profile(profile: Profile) -> str:
    lines = [f"profile {profile.name!r} (line {profile.line}, mode {profile.mode}): for {_who(profile.match)}"]
    for rule in profile.rules:
        reason = f"  # {rule.reason}" if rule.reason else ""
        mode = f" [mode {rule.mode}]" if rule.mode else ""
        lines.append(f"  {rule.action:5} {', '.join(p.text for p in rule.patterns)}{mode}  ({rule.where}){reason}")
    lines.append("  deny  everything else (default)")
    lines.append(f"  bodies: {_powers(profile.powers)}")
    over = "429" if profile.mode == "enforce" else f"let through and recorded (mode {profile.mode})"
    if profile.rate_limit:
        lines.append(f"  rate limit: {profile.rate_limit.rate:g}/s, burst {profile.rate_limit.burst}; over it: {over}")
    if profile.concurrency:
        cap = profile.concurrency
        counted = ("long-lived streams too" if cap.streams else
                   "long-lived streams (events, logs -f, attach, exec, stats, wait) not counted")
        lines.append(f"  concurrency: at most {cap.max} request(s) at a time, {counted}; over it: {over}  "
                     f"({cap.where})")
    if profile.owner:
        lines.append(f"  owner: {profile.owner} (stamped on creates; lists, events, prunes and containers scoped to it)")
    if profile.redact.env or profile.redact.mounts:
        lines.append("  redacted: " + ", ".join(n for n, on in (("Config.Env", profile.redact.env),
                                                                ("mounts", profile.redact.mounts)) if on))
    return "\n".join(lines)


def _who(match: ClientMatch) -> str:
    parts = [f"{label} {', '.join(map(str, sorted(values, key=str)))}" for label, values in (
        ("uid", match.uids), ("gid", match.gids), ("address", match.networks), ("cert CN", match.cert_cns),
        ("cert SAN", match.cert_sans), ("listener", match.listeners)) if values is not None]
    return " and ".join(parts) or "every client"


def _powers(powers: Powers) -> str:
    if powers.unrestricted:
        return "not checked (unrestricted)"
    granted = [name for name in ("privileged", "join_containers", "devices", "device_requests", "volumes_from",
                                 "unconfined", "volume_mounts", "plugins", "swarm", "image_loads")
               if getattr(powers, name)]
    if powers.host_namespaces:
        granted.append("host " + "/".join(sorted(powers.host_namespaces)))
    if powers.capabilities:
        granted.append("cap_add " + ",".join(sorted(powers.capabilities)))
    if powers.bind_sources:
        granted.append("binds under " + ",".join(powers.bind_sources))
    if powers.sysctls:
        granted.append("sysctls " + ",".join(powers.sysctls))
    required = [] if powers.root else ["no root"]
    required += [f"limits {','.join(sorted(powers.require_limits))}"] if powers.require_limits else []
    required += [f"cap_drop {','.join(sorted(powers.require_drop))}"] if powers.require_drop else []
    required += ["no-new-privileges"] if powers.require_no_new_privileges else []
    required += [f"images {','.join(powers.images)}"] if powers.images is not None else []
    required += [f"host ports {powers.host_ports}"] if powers.host_ports is not None else []
    if powers.network_subnets is not None:
        required.append("network subnets in " + (",".join(map(str, powers.network_subnets)) or "none"))
    text = "host powers granted: " + (", ".join(granted) or "none")
    return text + ("; required: " + ", ".join(required) if required else "")
