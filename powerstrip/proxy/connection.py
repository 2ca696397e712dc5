"""What the gateway knows about a client connection and the exchanges on it, for logs and observers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from powerstrip.hooks.model import Peer
from powerstrip.http.head import RequestHead
from powerstrip.http.machine import Timeouts
from powerstrip.http.outcome import Outcome
from powerstrip.proxy.access_log import ACCESS_LOG
from powerstrip.proxy.addresses import Address
from powerstrip.proxy.exchange import Limits


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    upstream: Address
    timeouts: Timeouts
    connect_timeout: float
    limits: Limits


class _ExtraInfo(Protocol):
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


@dataclass(slots=True, eq=False)
class ClientConnection:
    """Who is on the other end of one client connection (its peer, its TLS certificate)."""

    transport: _ExtraInfo
    peer: Peer

    def extra_info(self, name: str) -> Any:
        return self.transport.get_extra_info(name)


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """One finished exchange, for the audit log and the metrics."""

    method: str
    target: str
    hooked: bool
    generation: int
    outcome: Outcome
    seconds: float


class Observer(Protocol):
    def exchanged(self, client: ClientConnection, record: ExchangeRecord) -> None: ...


def log_exchange(head: RequestHead | None, outcome: Outcome, seconds: float) -> None:
    """The access line of one exchange (``head`` None: a request that could not be parsed)."""
    if not ACCESS_LOG.enabled:
        return
    hooks = f" uid={outcome.uid} hooks=" + ",".join(map(str, outcome.hooks)) if outcome.hooks else ""
    note = f" ({outcome.note})" if outcome.note and outcome.status >= 400 else ""
    request = f"{head.method} {head.target}" if head is not None else "(unreadable request)"
    ACCESS_LOG.write(f"{request} -> {outcome.status or '-'} {seconds * 1000:.1f}ms{hooks}{note}")
