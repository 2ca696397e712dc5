"""A small asynchronous client for the Docker Engine API, talking to the daemon directly.

The adapter must never go through the gateway (its own hooks would run again), and every call
needs a timeout and must be cancellable, so this is aiohttp over the daemon's socket rather than
the blocking Docker SDK.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp

DEFAULT_TIMEOUT = 30.0


class DockerError(Exception):
    """The daemon answered with an error status (``status``), or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DockerAPI:
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        parts = urlsplit(url)
        if parts.scheme == "unix":
            self._socket: str | None = parts.path
            self._base = "http://docker"
        elif parts.scheme in ("tcp", "http"):
            self._socket = None
            self._base = f"http://{parts.netloc}"
        else:
            raise ValueError(f"unsupported Docker URL {url!r}: use unix:///path or tcp://host:port")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the event loop that is running when it is made.
        if self._session is None:
            connector = aiohttp.UnixConnector(path=self._socket) if self._socket else aiohttp.TCPConnector()
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; returns the decoded JSON answer: ``None`` if empty, a list for a stream of objects."""
        limit = aiohttp.ClientTimeout(total=timeout or self.timeout)
        try:
            async with self._client().request(
                method, self._base + path, params=params, json=body, data=data, timeout=limit
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise DockerError(response.status, _message(raw))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DockerError(0, f"Cannot connect to the Docker daemon at {self.url}: {exc or type(exc).__name__}") from exc
        return _decode(raw)

    async def stream(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Follow an endless stream of JSON objects (``/events``) until the daemon closes it."""
        limit = aiohttp.ClientTimeout(total=None, connect=self.timeout)
        try:
            async with self._client().get(self._base + path, params=params, timeout=limit) as response:
                if response.status >= 400:
                    raise DockerError(response.status, _message(await response.read()))
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except aiohttp.ClientError as exc:
            raise DockerError(0, f"lost the Docker daemon at {self.url}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _decode(raw: bytes) -> Any:
    # Progress answers (/images/create) are one JSON object per line; JSON text never spans lines.
    objects = [json.loads(line) for line in raw.splitlines() if line.strip()]
    return objects[0] if len(objects) == 1 else (objects or None)


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip()
