"""TLS on a client connection, run in the protocol through ``ssl.MemoryBIO`` and ``SSLObject``.

asyncio's own TLS transport closes the whole connection when the client closes its sending side:
Docker's TLS client ends stdin of an attached ``run``/``exec`` with ``close_notify`` (Go's
``CloseWrite``) and then reads the output, so over that transport the output was lost. Here a
client's ``close_notify`` is an EOF of its sending side like a TCP FIN (passed on to the daemon),
the answer still flows back encrypted, and the gateway's own half-close is a ``close_notify`` too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from powerstrip.proxy.connection import ClientConnection
from powerstrip.proxy.driver import ClientSide, Hub
from powerstrip.proxy.peer import peer_of

log = logging.getLogger("powerstrip.proxy")

READ_SIZE = 256 * 1024


class TlsTransport:
    """The plaintext side of one TLS connection, offered to the driver as its client transport."""

    __slots__ = ("_raw", "_tls", "_outgoing", "_context", "_shut")

    def __init__(self, raw: asyncio.Transport, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO,
                 context: ssl.SSLContext) -> None:
        self._raw = raw
        self._tls = tls
        self._outgoing = outgoing
        self._context = context
        self._shut = False

    def flush(self) -> None:
        """Send what the TLS engine produced (records, handshake messages, alerts)."""
        data = self._outgoing.read()
        if data and not self._raw.is_closing():
            self._raw.write(data)

    def write(self, data: bytes) -> None:
        if self._shut or self._raw.is_closing():
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            log.debug("TLS write failed: %s", exc)
            self._raw.abort()
            return
        self.flush()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close as Go's ``CloseWrite``: a ``close_notify``; the client may go on sending."""
        if self._shut:
            return
        self._shut = True
        try:
            self._tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass  # the client's own close_notify need not come: ours is sent
        self.flush()

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def close(self) -> None:
        self.write_eof()
        self._raw.close()

    def abort(self) -> None:
        self._raw.abort()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sslcontext":
            return self._context
        if name == "peercert":
            try:
                return self._tls.getpeercert()
            except ValueError:  # before the handshake: no certificate yet (the peer is read again after it)
                return default
        if name == "ssl_object":
            return self._tls
        if name == "raw_transport":
            return self._raw
        return self._raw.get_extra_info(name, default)


class TlsClientSide(ClientSide):
    """A client connection on a TLS listener: decrypts into the driver, encrypts what it sends."""

    def __init__(self, hub: Hub, context: ssl.SSLContext) -> None:
        super().__init__(hub)
        self._context = context
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._tls_transport: TlsTransport | None = None
        self._handshaken = False
        self._closed_by_peer = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tls_transport = TlsTransport(transport, self._tls, self._outgoing, self._context)  # type: ignore[arg-type]
        super().connection_made(self._tls_transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        tls, transport = self._tls, self._tls_transport
        assert transport is not None
        self._incoming.write(data)
        if not self._handshaken:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                transport.flush()
                return
            except ssl.SSLError as exc:
                log.debug("TLS handshake failed: %s", exc)
                transport.flush()  # the alert, so the client can tell why
                transport.abort()
                return
            self._handshaken = True
            transport.flush()
            # who the client is includes its certificate, known only now
            self.identity = ClientConnection(transport, peer_of(transport))  # type: ignore[arg-type]
        while not self._closed_by_peer:
            try:
                chunk = tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                log.debug("TLS error from the client: %s", exc)
                transport.abort()
                return
            if not chunk:  # close_notify (Python reads it as b""): the client closed its sending side
                self._closed_by_peer = True
                super().eof_received()
                break
            super().data_received(chunk)
        transport.flush()

    def eof_received(self) -> bool:
        if not self._closed_by_peer:  # a TCP FIN without close_notify: an EOF all the same
            self._closed_by_peer = True
            super().eof_received()
        return True
