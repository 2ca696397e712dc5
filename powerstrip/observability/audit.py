"""The audit log: one JSON line per request, saying who asked for what and what the hooks decided.

Only built when ``--audit-log`` is given: without it the connection loop has no observer to call.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import IO, Any

from powerstrip.observability.peer import client_identity
from powerstrip.proxy.connection import ClientConnection, ExchangeRecord

log = logging.getLogger("powerstrip")


class AuditLog:
    """Writes the lines to a file (opened for appending, reopened on SIGHUP for log rotation) or stderr."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._stream: IO[str] = sys.stderr if target == "-" else self._open()

    def _open(self) -> IO[str]:
        return open(self._target, "a", encoding="utf-8", buffering=1)

    def reopen(self) -> None:
        if self._target == "-":
            return
        try:
            stream = self._open()
        except OSError as exc:
            log.error("cannot reopen the audit log %s (still writing to the old file): %s", self._target, exc)
            return
        self._stream.close()
        self._stream = stream

    def exchanged(self, client: ClientConnection, record: ExchangeRecord) -> None:
        self.write(audit_entry(client, record))

    def write(self, entry: dict[str, Any]) -> None:
        """One line; also for what is not a request (an adapter's action, via ``extensions.EXTENSIONS``)."""
        try:
            self._stream.write(json.dumps(entry, separators=(",", ":")) + "\n")
        except (OSError, ValueError) as exc:  # a full disk must not take requests down with it
            log.error("cannot write the audit log: %s", exc)

    def close(self) -> None:
        if self._target != "-":
            self._stream.close()


def audit_entry(client: ClientConnection, record: ExchangeRecord) -> dict[str, Any]:
    outcome = record.outcome
    entry: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "client": client_identity(client),
        "method": record.method,
        "path": record.target.partition("?")[0],
        "target": record.target,
        "status": outcome.status,
        "duration_ms": round(record.seconds * 1000, 3),
        "hooked": record.hooked,
        "config_generation": record.generation,
        "hooks": [{"adapter": hook.adapter, "phase": hook.phase, "decision": hook.outcome,
                   "duration_ms": round(hook.seconds * 1000, 3)} for hook in outcome.hooks],
    }
    if outcome.uid:
        entry["uid"] = outcome.uid
    warnings = [warning for hook in outcome.hooks for warning in hook.warnings]
    if warnings:  # as the client got them in its Warning headers
        entry["warnings"] = warnings
    if outcome.note and (outcome.status >= 400 or outcome.status == 0):
        entry["error"] = outcome.note
        if outcome.fault is not None:
            entry["fault"] = outcome.fault.value
    return entry
