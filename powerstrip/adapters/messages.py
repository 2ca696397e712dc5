"""What the built-in adapters read off a hook's request and response: its path and query, a JSON body."""

from __future__ import annotations

import json
from typing import Any
from powerstrip.hooks.model import ClientRequest
from powerstrip.http.params import query_params
from powerstrip.http.paths import normalize_path


def target_parts(request: ClientRequest) -> tuple[str, dict[str, list[str]]]:
    """The path dockerd routes (decoded, cleaned) and the parameters it reads (the gateway refused any other
    reading before the hooks ran)."""
    return normalize_path(request.request), query_params(request.request)


def json_or_none(text: str | None) -> Any:
    """A body's JSON, ``None`` when there is none or it is not JSON (the daemon answers text too)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
