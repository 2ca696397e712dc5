"""Adapters written in Python and run inside the gateway (``python:MODULE:ATTR``).

They cost no network hop, but they share the gateway's event loop and process, so each call
is bounded by the adapter's ``timeout`` and any exception it lets out is an adapter failure
(left to its ``failure_policy``), never a broken connection.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import types
from collections.abc import Coroutine, Generator, Sequence
from pathlib import Path
from typing import Any

from powerstrip.config.model import AdapterSpec
from powerstrip.hooks.model import Adapter, AdapterFailure, ClientRequest, HookRejected, ServerResponse

log = logging.getLogger("powerstrip.hooks")


class AdapterLoadError(Exception):
    """A ``MODULE:ATTR`` that cannot be imported or is not an adapter."""


def import_adapter(target: str, search_path: Sequence[Path] = ()) -> Adapter:
    """The object named by ``MODULE:ATTR``; ``search_path`` directories are tried before ``sys.path``."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise AdapterLoadError(f"{target!r} is not MODULE:ATTR (e.g. mypkg.hooks:adapter)")
    for directory in reversed(search_path):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:  # an adapter module may fail in any way while it is imported
        raise AdapterLoadError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AdapterLoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not all(callable(getattr(found, method, None)) for method in ("pre_hook", "post_hook")):
        raise AdapterLoadError(f"{target} is a {type(found).__name__}, not an adapter "
                               "(create one with powerstrip.sdk.Adapter)")
    return found


class InProcessAdapter:
    """An imported adapter under its config entry's name, bounded by the entry's timeout."""

    def __init__(self, spec: AdapterSpec, adapter: Adapter) -> None:
        self.name = spec.name
        self.supports_dry_run = bool(getattr(adapter, "supports_dry_run", False))
        self._spec = spec
        self._adapter = adapter

    def reads_body(self, method: str, target: str) -> bool:
        """The adapter's own answer (``HeadJudge``, the SDK's ``body=False``); one without any reads every body."""
        reads = getattr(self._adapter, "reads_body", None)
        return True if reads is None else bool(reads(method, target))

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        return await self._bounded(self._adapter.pre_hook(request))

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        return await self._bounded(self._adapter.post_hook(request, response))

    async def _bounded(self, call: Any) -> Any:
        try:
            if type(call) is types.CoroutineType:
                try:  # its first step, at once: a handler that is a plain function ends here, no timeout to arm
                    pending = call.send(None)
                except StopIteration as done:
                    return done.value
                call = _resumed(call, pending)  # it waits for something: the rest is bounded
            async with asyncio.timeout(self._spec.timeout):
                return await call
        except TimeoutError:
            raise AdapterFailure(f"no answer within {self._spec.timeout:g}s", 504) from None
        except (HookRejected, AdapterFailure):
            raise
        except Exception as exc:
            log.exception("in-process adapter %s failed", self.name)
            raise AdapterFailure(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        close = getattr(self._adapter, "close", None)
        if close is not None:
            await close()


@types.coroutine
def _resumed(call: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Go on with a coroutine stepped once outside ``await`` (it yielded ``pending``, what it waits for): each
    value the task sends and each exception it throws (the timeout's cancellation) is passed on, as ``await``
    would have."""
    while True:
        try:
            sent = yield pending
        except BaseException as exc:  # noqa: BLE001 - passed on to the coroutine, which decides
            try:
                pending = call.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                pending = call.send(sent)
            except StopIteration as done:
                return done.value
