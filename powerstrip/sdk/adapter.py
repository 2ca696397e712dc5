"""Writing an adapter: register handlers per endpoint pattern and phase with decorators.

The resulting ``Adapter`` is what the gateway calls, so the same object runs in-process
(``python:MODULE:ATTR`` in adapters.yml) or behind ``powerstrip adapter run MODULE:ATTR``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from powerstrip.http.paths import Pattern, normalize_path
from powerstrip.hooks.model import AdapterFailure, ClientRequest, HookRejected, ServerResponse
from powerstrip.sdk.messages import Request, Response
from powerstrip.sdk.reject import Reject

log = logging.getLogger("powerstrip.sdk")


PreResult = Union[Request, Reject, None]
PostResult = Union[Response, Reject, None]
PreHandler = Callable[[Request], Union[PreResult, Awaitable[PreResult]]]
PostHandler = Callable[[Request, Response], Union[PostResult, Awaitable[PostResult]]]
Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Registration:
    patterns: tuple[Pattern, ...]
    handler: Callable[..., Any]
    reads_body: bool = True

    def applies(self, method: str, path: str) -> bool:
        return any(pattern.matches(method, path) for pattern in self.patterns)

    async def call(self, *args: Any) -> Any:
        try:
            result = self.handler(*args)
            if inspect.isawaitable(result):
                result = await result
        except Reject as refusal:
            result = refusal
        except Exception as exc:
            log.exception("handler %s failed", self.handler.__qualname__)
            raise AdapterFailure(f"handler {self.handler.__qualname__} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(result, Reject):
            raise HookRejected(result.status, result.message)
        return result


class Adapter:
    """A set of handlers; it implements what the gateway's hook chain calls.

    Handlers of a phase run in the order they were registered; each sees what the previous one left.
    A handler returns ``None`` (keep the request/response, edits included), a replacement
    ``Request``/``Response``, or a ``Reject`` (returned or raised). Plain functions run on the
    gateway's event loop, so they must be quick; write ``async def`` for anything that waits.
    Handlers must have no side effects when ``request.dry_run`` is true.
    """

    supports_dry_run = True

    def __init__(self, name: str) -> None:
        self.name = name
        self._pre: list[_Registration] = []
        self._post: list[_Registration] = []

    def pre(self, *patterns: str, body: bool = True) -> Callable[[Handler], Handler]:
        """Run the decorated ``handler(request)`` before the daemon, for requests matching ``patterns``.

        ``body=False``: the handler judges the request by its head (method, target, headers, peer) and is given
        no body (``request.body`` is None). When every pre-hook of a request's route says so (and the route has
        no post-hook), the gateway streams the body to the daemon unbuffered: a build context, an archive, an
        image tarball of any size or bytes. Such a handler cannot set a body."""
        return self._register(self._pre, patterns, body)

    def post(self, *patterns: str) -> Callable[[Handler], Handler]:
        """Run the decorated ``handler(request, response)`` on the daemon's complete answer."""
        return self._register(self._post, patterns)

    @staticmethod
    def _register(into: list[_Registration], patterns: tuple[str, ...], body: bool = True) -> Callable[[Handler], Handler]:
        if not patterns:
            raise ValueError('give at least one endpoint pattern, e.g. "POST /*/containers/create"')
        compiled = tuple(Pattern.compile(pattern) for pattern in patterns)

        def decorate(handler: Handler) -> Handler:
            into.append(_Registration(compiled, handler, body))
            return handler

        return decorate

    def reads_body(self, method: str, target: str) -> bool:
        """``HeadJudge``: whether a pre-handler that runs for ``method target`` needs its body (one registered
        without ``body=False``); with none, the gateway may stream the body past this adapter."""
        if type(self).pre_hook is not Adapter.pre_hook:
            return True  # a subclass that reads requests its own way: its handlers are not the whole story
        path = normalize_path(target)
        return any(registration.reads_body for registration in self._pre if registration.applies(method, path))

    def _handlers(self, registrations: list[_Registration], message: ClientRequest) -> list[_Registration]:
        if not registrations:
            return []
        path = normalize_path(message.request)
        return [registration for registration in registrations if registration.applies(message.method, path)]

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        handlers = self._handlers(self._pre, request)
        if not handlers:
            return request
        current = Request(request)
        for registration in handlers:
            result = await registration.call(current)
            if result is not None:
                current = _expect(result, Request, registration)
        return current.to_message()

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        handlers = self._handlers(self._post, request)
        if not handlers:
            return response
        sent, current = Request(request), Response(response)
        for registration in handlers:
            result = await registration.call(sent, current)
            if result is not None:
                current = _expect(result, Response, registration)
        return current.to_message()

    async def close(self) -> None:
        """Nothing to release; the gateway calls this when the adapter leaves the config."""

    def __repr__(self) -> str:
        return f"<powerstrip.sdk.Adapter {self.name!r}: {len(self._pre)} pre, {len(self._post)} post handler(s)>"


def _expect(result: Any, kind: type, registration: _Registration) -> Any:
    if not isinstance(result, kind):
        raise AdapterFailure(f"handler {registration.handler.__qualname__} returned {type(result).__name__}; "
                             f"return None, a {kind.__name__} or a Reject")
    return result
