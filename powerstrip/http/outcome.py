"""How one exchange ended: the one value the relay, the hook path, the access log and the audit share."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Side(enum.Enum):
    """Who is at fault when an exchange ends in an error: the client (4xx: its request was malformed, too large,
    too slow or refused by a hook), the daemon or an adapter (5xx: no usable answer), or the gateway itself."""

    CLIENT = "client"
    DAEMON = "daemon"
    ADAPTER = "adapter"
    GATEWAY = "gateway"


@dataclass(slots=True)
class Outcome:
    """How an exchange ended, for the log line, the audit, the metrics and the connection.

    ``status`` 0 means no response was sent (the client left, the connection was cut). ``hooks`` and
    ``uid`` are filled in by the hook chain (its own records); a relayed exchange leaves them empty.
    """

    status: int = 0
    keep_alive: bool = False
    hooks: list[Any] = field(default_factory=list)
    note: str = ""
    uid: str = ""
    fault: Side | None = None
