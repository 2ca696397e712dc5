"""Socket addresses in Docker's notation: ``unix:///path`` and ``tcp://host:port``."""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Address:
    scheme: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"tcp://{self.host}:{self.port}"


def parse_address(text: str, default_port: int = 2375) -> Address:
    """Parse ``unix://PATH`` (relative paths allowed, made absolute) or ``tcp://HOST:PORT``."""
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path:
            raise ValueError(f"{text!r}: a unix address needs a path")
        return Address("unix", path=os.path.abspath(path))
    if text.startswith("tcp://"):
        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"{text!r}: a tcp address needs a host")
        return Address("tcp", host=parts.hostname, port=parts.port or default_port)
    raise ValueError(f"{text!r}: expected unix:///path or tcp://host:port")


async def open_connection(
    address: Address, limit: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.scheme == "unix":
        return await asyncio.open_unix_connection(address.path, limit=limit)
    return await asyncio.open_connection(
        address.host, address.port, limit=limit, ssl=ssl_context,
        server_hostname=address.host if ssl_context else None,
    )
