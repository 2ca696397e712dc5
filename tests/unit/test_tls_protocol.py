"""TLS inside the protocol (proxy/tls.py), driven in memory: a client's close_notify is a half-close.

No sockets: the client is an ``SSLObject`` over memory BIOs, the gateway's transport a recorder, the
relay machine a stub that records what reaches it.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess

import pytest

from powerstrip.proxy.tls import TlsClientSide, TlsTransport


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    return server, client


class RawTransport:
    """The TCP transport under the TLS layer: keeps what the gateway sends."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def get_extra_info(self, name: str, default=None):
        return default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Machine:
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False

    def client_data(self, data: bytes) -> None:
        self.data += data

    def client_eof(self) -> None:
        self.eof = True


def pump(client: ssl.SSLObject, to_server: ssl.MemoryBIO, side: TlsClientSide, raw: RawTransport,
         from_server: ssl.MemoryBIO) -> None:
    """Move the bytes each side produced to the other."""
    if to_server.pending:
        side.data_received(to_server.read())
    if raw.sent:
        from_server.write(bytes(raw.sent))
        raw.sent.clear()


def test_close_notify_reaches_the_machine_as_eof_and_the_answer_still_flows_back(contexts):
    server_ctx, client_ctx = contexts

    async def play() -> None:
        side = TlsClientSide(hub=None, context=server_ctx)  # type: ignore[arg-type]  # the TLS layer alone
        machine, raw = Machine(), RawTransport()
        side._tls_transport = TlsTransport(raw, side._tls, side._outgoing, server_ctx)  # type: ignore[arg-type]
        side.transport = side._tls_transport
        side.machine = machine  # type: ignore[assignment]
        to_server, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = client_ctx.wrap_bio(from_server, to_server, server_side=False)
        for _ in range(10):  # the handshake, in memory
            try:
                client.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump(client, to_server, side, raw, from_server)
        pump(client, to_server, side, raw, from_server)
        client.write(b"stdin bytes")
        try:
            client.unwrap()  # close_notify: Go's CloseWrite
        except ssl.SSLWantReadError:
            pass
        pump(client, to_server, side, raw, from_server)
        assert bytes(machine.data) == b"stdin bytes"
        assert machine.eof
        side.transport.write(b"output after the half-close")
        pump(client, to_server, side, raw, from_server)
        assert raw.closed is False
        got = b""
        try:
            while True:
                got += client.read(4096)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError):
            pass
        assert got == b"output after the half-close"

    asyncio.run(play())
