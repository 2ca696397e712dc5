"""``powerstrip hosts list``, ``powerstrip rules add|list|delete`` and ``powerstrip messages``.

They read and write the store the gateway's ``builtin:hostaware`` uses: the SQLite file in
``--state-dir``, or the etcd cluster with ``--cluster`` (the same options and environment
defaults as ``powerstrip network``). The gateway picks up a rule change within a second.
``metrics_source_option`` is the adapter's own option of ``serve`` and ``adapter run``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from powerstrip.adapters.hostaware.model import ActionKind, HostAwareError, HostRecord, Message, RuleStatus, parse_rule
from powerstrip.adapters.hostaware.qos_action import check_rule_policy
from powerstrip.adapters.hostaware.store import HostStore, host_name, open_store
from powerstrip.adapters.net.cli import cluster_options, fail
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.qos.service import Qos, open_qos

if TYPE_CHECKING:
    from powerstrip.adapters.hostaware.sources import MetricsSourceSettings

T = TypeVar("T")
FOLLOW_EVERY = 1.0
SHOWN_METRICS = ("load_one", "cpu_idle", "mem_free", "bytes_in")


def _metrics_source(_ctx: click.Context, _param: click.Parameter, value: str | None) -> MetricsSourceSettings | None:
    if value in (None, "", "builtin"):
        return None  # the built-in collector: the adapter's default
    from powerstrip.adapters.hostaware.sources import MetricsSourceSettings  # psutil and defusedxml: only here

    try:
        return MetricsSourceSettings(value)
    except HostAwareError as exc:
        raise click.BadParameter(exc.message) from None


metrics_source_option = click.option(
    "--metrics-source", metavar="builtin|gmond://HOST:PORT", envvar="POWERSTRIP_METRICS_SOURCE",
    callback=_metrics_source,
    help="Where builtin:hostaware reads this host's metrics: the built-in collector (default) or a Ganglia "
         "gmond's XML port (env POWERSTRIP_METRICS_SOURCE).")


def _options(command: Callable[..., Any], qos: bool = False) -> Callable[..., Any]:
    """``--docker``, ``--state-dir`` and ``--cluster`` as ``powerstrip network`` has them; a ``store`` for
    ``command`` (and with ``qos``, a ``qos`` opener of the QoS stores those options name)."""

    @functools.wraps(command)
    def with_store(*args: Any, docker: str, state_dir: Path, cluster: ClusterSettings | None, **kwargs: Any) -> Any:
        if qos:  # rules and messages are in the store only; --docker serves the QoS stores' opener
            kwargs["qos"] = functools.partial(open_qos, docker, state_dir, cluster)
        return command(*args, store=open_store(state_dir, cluster, host_name(cluster)), **kwargs)

    with_store = cluster_options(with_store)
    with_store = click.option("--state-dir", envvar="POWERSTRIP_STATE_DIR", default=".powerstrip", show_default=True,
                              type=click.Path(file_okay=False, path_type=Path),
                              help="powerstrip's state directory (env POWERSTRIP_STATE_DIR).")(with_store)
    return click.option("--docker", envvar="POWERSTRIP_DOCKER_HOST", default="unix:///var/run/docker.sock",
                        show_default=True, help="The Docker daemon (env POWERSTRIP_DOCKER_HOST).")(with_store)


def _call(action: Callable[[], T]) -> T:
    try:
        return action()
    except HostAwareError as exc:
        fail(f"Error: {exc.message}")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    cells = [list(header)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


@click.group("rules")
def rules() -> None:
    """Host-aware rules: act when a host's metric meets a threshold (docs/host-aware.md)."""


@rules.command("add")
@click.argument("document", metavar="JSON")
@functools.partial(_options, qos=True)
def rules_add(document: str, store: HostStore, qos: Callable[[], Qos]) -> None:
    """Add a rule, e.g. '{"name": "busy", "metric": "load_one", "op": ">", "threshold": 4,
    "polling": 5, "times": 3, "action": "refuse-create"}'.

    Actions: refuse-create, qos:<policy JSON> (a QoS policy without "name", e.g. qos:{"rate": "2mbit"},
    on the host's containers while the rule holds), isolate:<network>, webhook:<url>."""
    rule = _call(lambda: parse_rule(document))
    if rule.action.kind is ActionKind.QOS:
        _call(lambda: check_rule_policy(qos(), rule))
    _call(lambda: store.add_rule(rule))
    click.echo(rule.name)


@rules.command("list")
@click.option("--json", "as_json", is_flag=True, help="The rules' JSON documents, one a line.")
@_options
def rules_list(as_json: bool, store: HostStore) -> None:
    """List the rules."""
    found = _call(store.rules)
    if as_json:
        for rule in found:
            click.echo(json.dumps(rule.document()))
        return
    rows = [(r.name, r.describe(), f"{r.polling:g}s", r.times, r.host or "(every host)", r.action) for r in found]
    click.echo(_table(("NAME", "CONDITION", "POLLING", "TIMES", "HOST", "ACTION"), rows))


@rules.command("delete")
@click.argument("name")
@_options
def rules_delete(name: str, store: HostStore) -> None:
    """Delete rule NAME (its action is undone on every host within a second)."""
    click.echo(_call(lambda: store.delete_rule(name)).name)


@click.group("hosts")
def hosts() -> None:
    """The monitored hosts."""


@hosts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Each host's record as JSON, one a line.")
@_options
def hosts_list(as_json: bool, store: HostStore) -> None:
    """List the monitored hosts: source, state, last metrics and where each rule stands."""
    found = _call(store.hosts)
    if as_json:
        for record in found:
            click.echo(json.dumps(record.document()))
        return
    now = time.time()
    rows = [(r.name, r.source, _state(r), f"{max(0, now - r.updated):.0f}s ago" if r.updated else "-",
             *(_metric(r, name) for name in SHOWN_METRICS), _rules(r)) for r in found]
    click.echo(_table(("HOST", "SOURCE", "STATE", "UPDATED", *(n.upper() for n in SHOWN_METRICS), "RULES"), rows))


def _state(record: HostRecord) -> str:
    if record.lost:
        return "lost"
    return f"no data: {record.error}" if record.error else "healthy"


def _metric(record: HostRecord, name: str) -> str:
    value = record.metrics.get(name)
    return "-" if value is None or record.lost else f"{value:.6g}"


def _rules(record: HostRecord) -> str:
    parts = []
    for name, state in record.rules.items():
        if state.status is RuleStatus.PENDING:
            parts.append(f"{name}={state.status.value}({state.count})")
        else:
            parts.append(f"{name}={state.status.value}")
    return ",".join(parts) or "-"


@click.command("messages")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new messages (Ctrl-C stops).")
@click.option("--host", "host", metavar="H", help="Only the messages of host H.")
@click.option("--tail", default=100, show_default=True, help="How many of the newest messages to show first.")
@click.option("--json", "as_json", is_flag=True, help="Each message as JSON, one a line.")
@_options
def messages(follow: bool, host: str | None, tail: int, as_json: bool, store: HostStore) -> None:
    """INFO / WARN / THRESHOLD_MET / CLEARED messages of the rules, oldest first."""
    shown = _call(lambda: store.messages(0, host, max(0, tail))) if tail > 0 else []
    last = shown[-1].id if shown else _last_id(store, host)
    for message in shown:
        click.echo(_line(message, as_json))
    while follow:
        time.sleep(FOLLOW_EVERY)
        try:
            new = store.messages(last, host)
        except HostAwareError as exc:
            click.echo(f"Error: {exc.message} (retrying)", err=True)
            continue
        for message in new:
            click.echo(_line(message, as_json))
            last = message.id


def _last_id(store: HostStore, host: str | None) -> int:
    newest = _call(lambda: store.messages(0, host, 1))
    return newest[-1].id if newest else 0


def _line(message: Message, as_json: bool) -> str:
    if as_json:
        return json.dumps(message.document())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(message.time)) + "Z"
    fields = [stamp, f"{message.level.value:<13}", message.host]
    if message.rule:
        fields.append(f"rule={message.rule}")
    if message.value is not None:
        fields.append(f"{message.metric}={message.value:g}")
    if message.action:
        fields.append(f"action={message.action}")
    return "  ".join(fields) + f"  {message.text}"
