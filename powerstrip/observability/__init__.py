"""What the gateway tells its operators: the audit log, Prometheus metrics and the health endpoint."""

from __future__ import annotations

from powerstrip.proxy.connection import ClientConnection, ExchangeRecord, Observer


class Fanout:
    """Several observers (audit log and metrics) behind the connection loop's one."""

    def __init__(self, observers: list[Observer]) -> None:
        self._observers = observers

    def exchanged(self, client: ClientConnection, record: ExchangeRecord) -> None:
        for observer in self._observers:
            observer.exchanged(client, record)


def combine(*observers: Observer | None) -> Observer | None:
    """None when nothing observes: the connection loop then builds no record at all."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Fanout(present)
