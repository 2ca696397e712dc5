"""The values that flow through a hook chain, independent of any wire protocol.

Protocol v1 carries bodies as JSON strings, so bodies here are text (``str``) or ``None``.
The proxy decodes the de-framed request body as strict UTF-8 before the chain and encodes
the chain's result back, so a hook sees exactly the bytes that are forwarded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any, Protocol

from powerstrip.hooks.scope import ExchangeScope

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end of the client connection, as far as the gateway can tell.

    On a unix socket the kernel vouches for ``uid``/``gid``/``pid`` (SO_PEERCRED); on TCP only
    ``address`` is known. ``listener`` is the gateway's own address the client came in on
    (``unix:///path``, ``tcp://host:port``); over TLS with a client certificate, ``cert_subject``
    (``O=example,CN=alice``), ``cert_cn`` and ``cert_sans`` (``DNS:x``, ``IP:x``, ...) say whose it is.
    """

    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    address: str | None = None
    listener: str | None = None
    cert_subject: str | None = None
    cert_cn: str | None = None
    cert_sans: tuple[str, ...] = ()


UNKNOWN_PEER = Peer()


def parse_peer(identity: Sequence[str]) -> Peer:
    """The client described as ``KEY=VALUE`` items: ``uid=N``, ``gid=N`` (the uid's by default), ``pid=N``, ``addr=IP``,
    ``cn=NAME``, ``san=X`` (repeatable), ``listener=URL`` (the command lines' ``--as``); ValueError if not."""
    fields: dict[str, Any] = {}
    sans: list[str] = []
    for item in identity:
        key, _, value = item.partition("=")
        if key in ("uid", "gid", "pid") and value.isdigit():
            fields[key] = int(value)
        elif key in ("addr", "address"):
            fields["address"] = value if value.count(":") == 1 or value.startswith("[") else f"{value}:0"
        elif key == "cn":
            fields["cert_cn"], fields["cert_subject"] = value, f"CN={value}"
        elif key == "san":
            sans.append(value)
        elif key == "listener":
            fields["listener"] = value
        else:
            raise ValueError(f"{item!r}: expected uid=N, gid=N, pid=N, addr=IP, cn=NAME, san=X or listener=URL")
    if "uid" in fields and "gid" not in fields:
        fields["gid"] = fields["uid"]
    return Peer(**fields, cert_sans=tuple(sans))


class DecodedBody:
    """The value the gateway decoded a request body into (``powerstrip.canonical``), given to the first hook in the
    process that reads it, and only once: that hook may change the value in place, so a later reader decodes the
    text again. It belongs to the exact text it was decoded from; a request with another body gets nothing."""

    __slots__ = ("_text", "_value")

    def __init__(self, text: str, value: Any) -> None:
        self._text: str | None = text
        self._value = value

    def take(self, text: str) -> tuple[bool, Any]:
        """(True, the value) the first time it is asked for with its own text (the same object), else (False, None)."""
        if self._text is None or self._text is not text:
            return False, None
        value, self._value, self._text = self._value, None, None
        return True, value


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A request as a hook sees it: ``request`` is the target, path and query (v1 ``Request``).

    ``headers`` (as the client sent them), ``uid`` (one per exchange, the same in every hook and in
    the logs), ``dry_run``, ``peer`` and ``scope`` are context: hooks read them, the forwarded request keeps
    them. ``scope`` (``hooks.scope``) is where an adapter adds warnings for the client and learns when the
    exchange ends; it is the same object in every hook of one exchange and takes no part in comparisons.
    ``decoded`` spares an in-process hook decoding ``body`` a second time (the gateway decoded it already).
    """

    method: str
    request: str
    body: str | None
    headers: Headers = ()
    uid: str = ""
    dry_run: bool = False
    peer: Peer = UNKNOWN_PEER
    scope: ExchangeScope = field(default_factory=ExchangeScope, compare=False, repr=False)
    decoded: DecodedBody | None = field(default=None, compare=False, repr=False)  # body's value, once (in-process)


@dataclass(frozen=True, slots=True)
class ServerResponse:
    """A complete (non-stream) daemon response as a post-hook sees it."""

    code: int
    content_type: str | None
    body: str | None


@dataclass(frozen=True, slots=True)
class PathVerdict:
    """An adapter's decision from the method, target and client alone (no body, no hook call): relay the
    request without hooks (``status`` 0), or refuse it with ``status`` and ``message``."""

    status: int = 0
    message: str = ""


RELAY = PathVerdict()


class HookRejected(Exception):
    """An adapter decided to refuse: the client gets ``status`` and ``message``, whatever the failure policy."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdapterFailure(Exception):
    """An adapter could not give a usable answer (down, slow, garbage, 5xx).

    The adapter's failure policy decides: ``fail`` turns it into an error for the client
    (``status``, 502 by default, 504 for a timeout), ``ignore`` carries on without it.
    """

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Adapter(Protocol):
    """What the chain calls; HTTP adapters and in-process (built-in) adapters both implement it.

    Either method returns the (possibly modified) value, raises ``HookRejected`` to refuse,
    or raises ``AdapterFailure`` when it cannot answer. ``supports_dry_run`` says whether the
    adapter can be given a dry-run request (it promises no side effects then); the others are
    skipped in a dry run.
    """

    name: str
    supports_dry_run: bool

    async def pre_hook(self, request: ClientRequest) -> ClientRequest: ...

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse: ...

    async def close(self) -> None: ...


class HeadJudge(Protocol):
    """Optional: ``reads_body`` False says the adapter judges METHOD TARGET by its head alone (the body is data
    for the daemon: a build context, an archive, an image). When every pre-hook of a route without post-hooks
    says so, the hooks are given no body (``body`` None) and the body is streamed to the daemon unbuffered,
    whatever its size or bytes. A hook must not give such a request a body."""

    def reads_body(self, method: str, target: str) -> bool: ...


class PathJudge(Protocol):
    """Optional, for an adapter that is a route's only hook: ``judge_path`` may decide a request before its
    body is read, so a path-only decision costs no hook round trip (the built-in policy's rules). ``None``:
    no decision, run the hook as usual. It must be quick and must not block."""

    def judge_path(self, method: str, target: str, peer: Peer) -> PathVerdict | None: ...
