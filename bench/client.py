"""A keep-alive HTTP/1.1 client for the Docker API over TCP, timed per request (stdlib http.client).

Used for the workloads wrk cannot drive (create/start/remove sequences); the same client serves
every candidate.
"""

from __future__ import annotations

import http.client
import json
import time


class ApiError(RuntimeError):
    pass


class DockerApi:
    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self) -> None:
        self._conn.close()

    def call(self, method: str, path: str, body: dict | None = None, expect: tuple[int, ...] = (200,)) -> tuple[float, bytes]:
        """(seconds from sending to the last byte of the answer, body)."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        started = time.perf_counter()
        self._conn.request(method, path, body=payload, headers=headers)
        response = self._conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status not in expect:
            raise ApiError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return elapsed, data

    def create(self, name: str, image: str, cmd: list[str]) -> tuple[float, str]:
        elapsed, data = self.call("POST", f"/containers/create?name={name}", {"Image": image, "Cmd": cmd},
                                  expect=(201,))
        return elapsed, json.loads(data)["Id"]

    def remove(self, container: str) -> None:
        self.call("DELETE", f"/containers/{container}?force=1&v=1", expect=(204,))
