"""A plain HTTP/1.1 client over a unix socket, for requests the docker clients never send."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(socket_path: str, method: str, target: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, chunked: bool = False, timeout: float = 30.0) -> Reply:
    connection = UnixHTTPConnection(socket_path, timeout)
    try:
        if chunked:
            pieces = [body[i:i + 7] for i in range(0, len(body or b""), 7)]
            connection.request(method, target, body=iter(pieces), headers=headers or {}, encode_chunked=True)
        else:
            connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
