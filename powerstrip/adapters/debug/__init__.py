"""The ``debug`` built-in adapter: logs what it sees and passes it on unchanged.

Put it on both sides of another adapter (``pre: [debug, x, debug]``) and its second log line
says what ``x`` changed: debug hooks remember, per exchange uid and phase, the last request or
response one of them logged (whatever their config names) and print a diff against it instead
of the whole body again.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections import OrderedDict

from powerstrip.adapters import BuiltinContext
from powerstrip.hooks.model import ClientRequest, ServerResponse

log = logging.getLogger("powerstrip.debug")

REMEMBERED_EXCHANGES = 1024
BODY_LOG_LIMIT = 4096


def _pretty(body: str | None) -> str:
    """A stable, readable form of a body: indented JSON when it is JSON."""
    if body is None:
        return "(no body)"
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=True)
    except ValueError:
        return body


def _clip(text: str) -> str:
    return text if len(text) <= BODY_LOG_LIMIT else text[:BODY_LOG_LIMIT] + f"... ({len(text)} characters)"


class DebugAdapter:
    """Logs each hook call at INFO on the ``powerstrip.debug`` logger; changes nothing."""

    supports_dry_run = True

    _seen: OrderedDict[str, str] = OrderedDict()  # shared by every debug adapter: uid/phase -> text

    def __init__(self, name: str) -> None:
        self.name = name

    def _describe(self, key: str, text: str) -> str:
        """The whole text the first time an exchange is seen, a diff against the last sight after."""
        previous = self._seen.pop(key, None)
        self._seen[key] = text
        while len(self._seen) > REMEMBERED_EXCHANGES:
            self._seen.popitem(last=False)
        if previous is None:
            return _clip(text)
        if previous == text:
            return "unchanged since the previous debug hook"
        diff = difflib.unified_diff(previous.splitlines(), text.splitlines(), "before", "after", lineterm="")
        return "changed since the previous debug hook:\n" + _clip("\n".join(diff))

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        text = f"{request.method} {request.request}\n{_pretty(request.body)}"
        dry = " (dry run)" if request.dry_run else ""
        log.info("%s pre-hook uid=%s%s: %s", self.name, request.uid, dry, self._describe(request.uid + "/pre", text))
        return request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        text = f"{response.code} {response.content_type}\n{_pretty(response.body)}"
        log.info("%s post-hook uid=%s (%s %s): %s", self.name, request.uid, request.method, request.request,
                 self._describe(request.uid + "/post", text))
        return response

    async def close(self) -> None:
        """Nothing to release: what is remembered is bounded by REMEMBERED_EXCHANGES."""


def create_adapter(context: BuiltinContext) -> DebugAdapter:
    return DebugAdapter(context.name)
