"""The request and response an SDK handler gets: typed, JSON decoded on demand, editable in place.

A handler may change ``json`` (or assign ``body``) and return nothing; the SDK then forwards the
change. An untouched body is forwarded as it came, never re-encoded.

``Request.json`` is the body as dockerd will execute it (powerstrip.canonical): canonical field names,
duplicates resolved, legacy top-level HostConfig fields in ``HostConfig``. Behind powerstrip's gateway the
body is canonical already; served to another gateway, the SDK canonicalises it itself. A body that
cannot be read that way is refused with 400 when a handler asks for ``json``; a handler never gets
``None`` for a JSON body it could not read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from powerstrip.canonical import BodyRefused, canonicalize
from powerstrip.http.params import AmbiguousRequest, query_params
from powerstrip.http.paths import normalize_path
from powerstrip.hooks.model import ClientRequest, ServerResponse
from powerstrip.sdk.reject import Reject

_UNDECODED = object()


def _fingerprint(value: Any) -> object:
    """What a decoded body serialises to, to see whether a handler changed it without decoding the body again.

    orjson's bytes (about a microsecond on a create body, where decoding again costs tens); a value it cannot
    write gets a fingerprint equal to nothing, so the body counts as changed.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return object()


class JsonBody:
    """A text body with a lazily decoded, editable JSON view (``None`` when absent or not JSON)."""

    def __init__(self, body: str | None) -> None:
        self.body = body
        self._original = body
        self._decoded: Any = _UNDECODED
        self._snapshot: object = None  # the decoded body's fingerprint as it was first read

    @property
    def json(self) -> Any:
        if self._decoded is _UNDECODED:
            self._decoded = self._loads(self.body)
            self._snapshot = _fingerprint(self._decoded)
        return self._decoded

    @json.setter
    def json(self, value: Any) -> None:
        self._decoded = value

    def final_body(self) -> str | None:
        """The body to forward: an assigned ``body`` wins, else a changed ``json``, else the original."""
        if self.body != self._original or self._decoded is _UNDECODED:
            return self.body
        snapshot = self._snapshot if self._snapshot is not None else _fingerprint(self._loads(self._original))
        if _fingerprint(self._decoded) == snapshot:
            return self._original
        return None if self._decoded is None else json.dumps(self._decoded)

    def _loads(self, body: str | None) -> Any:
        """A response body's JSON (``None`` when there is none or it is not JSON: daemons answer text too)."""
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None


class Request(JsonBody):
    """A client request: ``target`` is what the client sent (path and query); assign it to rewrite.

    ``peer`` says who sent it (unix uid/gid/pid or TCP address), ``uid`` names the exchange in the logs.
    ``warn`` tells the client something (a ``Warning`` header), ``on_end`` ties something to the exchange's end.
    """

    def __init__(self, message: ClientRequest) -> None:
        super().__init__(message.body)
        self.method = message.method
        self.target = message.request
        self._headers: CIMultiDictProxy[str] | None = None
        self.uid = message.uid
        self.dry_run = message.dry_run
        self.peer = message.peer
        self._message = message

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The client's headers, read-only, names case-insensitive (built when first asked for: most handlers
        never look)."""
        if self._headers is None:
            self._headers = CIMultiDictProxy(CIMultiDict(self._message.headers))
        return self._headers

    @property
    def path(self) -> str:
        """The decoded, cleaned path Docker will route (no query), e.g. ``/v1.41/containers/create``."""
        return normalize_path(self.target)

    def _loads(self, body: str | None) -> Any:
        """The body as dockerd reads it; ``None`` only when there is no body or it is not JSON at all."""
        if not body:
            return None
        decoded = self._message.decoded
        if decoded is not None:
            taken, value = decoded.take(body)  # what the gateway decoded this very text into: not decoded again
            if taken:
                return value
        try:
            found = canonicalize(self.method, self.path, body)
        except BodyRefused as refused:
            raise Reject(400, f"the request body cannot be judged: {refused}") from None
        return None if found is None else found.value

    @property
    def query(self) -> dict[str, list[str]]:
        """The parameters as dockerd reads them (``query_params``): values in order, and dockerd's handlers take
        the first of a parameter they read once (``query["name"][0]``). A hook assigning ``target`` a query Go
        would read differently gets a 400 here."""
        try:
            return query_params(self.target)
        except AmbiguousRequest as refused:
            raise Reject(400, f"the request target cannot be judged: {refused}") from None

    def warn(self, text: str) -> None:
        """A warning for the client: a ``Warning: 299 powerstrip "adapter NAME: text"`` header on the response
        it gets (whatever the endpoint, whether or not the request is refused), a line in the gateway's log and
        in the request's audit entry. At most 8 an exchange, each cut at 256 characters. Served over protocol
        2 it travels in the reply's ``warnings``; protocol 1 cannot carry it (it is logged by the service)."""
        self._message.scope.warn(text)

    def on_end(self, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` once when this exchange is over, however it ends (answered, refused, the client
        or the daemon gone, a stream closed hours later, the gateway stopping): to give back what the handler
        took, such as a concurrency slot. False, and no call ever, when the adapter is not run in-process by
        the gateway (served over HTTP, nothing tells it the end): do not take what cannot be given back then.
        The callback must be quick and must not raise."""
        return self._message.scope.on_end(callback)

    def to_message(self) -> ClientRequest:
        body = self.final_body()
        message = self._message
        if (self.method, self.target, body) == (message.method, message.request, message.body):
            return message
        return ClientRequest(self.method, self.target, body, message.headers, message.uid, message.dry_run,
                             message.peer, message.scope)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} uid={self.uid}>"


class Response(JsonBody):
    """The daemon's complete response, as the post-hooks get it; ``code`` and the body are editable."""

    def __init__(self, message: ServerResponse) -> None:
        super().__init__(message.body)
        self.code = message.code
        self.content_type = message.content_type
        self._message = message

    def to_message(self) -> ServerResponse:
        body = self.final_body()
        message = self._message
        if (self.code, self.content_type, body) == (message.code, message.content_type, message.body):
            return message
        return ServerResponse(self.code, self.content_type, body)

    def __repr__(self) -> str:
        return f"<Response {self.code}>"
