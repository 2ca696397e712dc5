"""What the gateway knows about a client connection and the exchanges on it, for logs and observers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from powerstrip.hooks.model import Peer
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


def log_exchange(method: str, target: str, outcome: Outcome, seconds: float) -> None:
    """The access line of one exchange (the access log escapes what the client wrote)."""
    if not ACCESS_LOG.enabled:
        return
    if not outcome.hooks and not outcome.note:
        ACCESS_LOG.exchange(method, target, outcome.status, seconds)
        return
    hooks = f" uid={outcome.uid} hooks=" + ",".join(map(str, outcome.hooks)) if outcome.hooks else ""
    note = f" ({outcome.note})" if outcome.note and outcome.status >= 400 else ""
    ACCESS_LOG.exchange(method, target, outcome.status, seconds, hooks + note)


def request_line_parts(raw: bytes) -> tuple[str, str]:
    """Method and target from the first line of a head that did not parse (latin-1, so any bytes read),
    for its access line and audit entry: smuggling attempts are logged like any other request."""
    end = raw.find(b"\n")
    line = raw[: end if end >= 0 else len(raw)].rstrip(b"\r").decode("latin-1")
    method, _, rest = line.partition(" ")
    return method, rest.rpartition(" ")[0] or rest
