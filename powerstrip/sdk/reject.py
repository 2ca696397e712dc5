"""``Reject``: how an SDK handler refuses a request (raised or returned)."""

from __future__ import annotations


class Reject(Exception):
    """Refuse the request: the client gets ``status`` and ``{"message": message}``. Raise or return it."""

    def __init__(self, status: int = 403, message: str = "refused") -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a refusal needs an HTTP error status (400-599), not {status}")
        super().__init__(message)
        self.status = status
        self.message = message
