"""What the built-in adapters read off a hook's request and response: its path and query, a JSON body."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from powerstrip.hooks.model import ClientRequest


def target_parts(request: ClientRequest) -> tuple[str, dict[str, list[str]]]:
    """The request target's path and its parsed query."""
    parts = urlsplit(request.request)
    return parts.path, parse_qs(parts.query)


def json_or_none(text: str | None) -> Any:
    """A body's JSON, ``None`` when there is none or it is not JSON (the daemon answers text too)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
