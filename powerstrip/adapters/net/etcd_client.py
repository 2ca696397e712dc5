"""A thin layer over etcd3gw: several endpoints with failover, revisions, transactions, one error type.

etcd3gw speaks etcd's v3 JSON gateway over plain HTTP (no gRPC stack to build), and is kept by
the OpenStack project. Its ``get``/``put`` helpers hide the revisions that compare-and-swap needs,
so ranges and transactions are posted as the gateway's JSON here, with the client's session,
URLs and error mapping. Any failure to reach the cluster becomes ``StoreUnavailable`` (503).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import etcd3gw
from etcd3gw import exceptions as etcd_errors

from powerstrip.adapters.net.model import StoreUnavailable

T = TypeVar("T")
REQUEST_TIMEOUT = 5.0
_UNREACHABLE = (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError, etcd_errors.InternalServerError)


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    lease: int


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def put(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    request: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        request["lease"] = lease
    return {"request_put": request}


def delete(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


def unchanged(key: str, mod_revision: int) -> dict[str, Any]:
    """Compare: ``key`` was last written at ``mod_revision`` (0: it does not exist)."""
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}


class Etcd:
    """One etcd cluster reached through any of its endpoints."""

    def __init__(self, endpoints: tuple[tuple[str, int], ...], timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = "etcd://" + ",".join(f"{h}:{p}" for h, p in endpoints)
        self._clients = [etcd3gw.Etcd3Client(host=h, port=p, timeout=timeout, api_path="/v3/") for h, p in endpoints]
        self._current = 0
        self._lock = threading.Lock()

    def _call(self, action: Callable[[etcd3gw.Etcd3Client], T]) -> T:
        """Run ``action`` on the current endpoint, trying the others when it cannot be reached."""
        with self._lock:
            first = self._current
        last: Exception | None = None
        for step in range(len(self._clients)):
            index = (first + step) % len(self._clients)
            try:
                result = action(self._clients[index])
            except _UNREACHABLE as exc:
                last = exc
                continue
            except etcd_errors.Etcd3Exception as exc:
                raise StoreUnavailable(f"cluster store {self.url}: {exc.detail_text or exc}") from None
            with self._lock:
                self._current = index
            return result
        raise StoreUnavailable(f"cluster store {self.url} unreachable: {_short(last)}")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(lambda c: c.post(c.get_url(path), json=body))

    def range(self, prefix: str, keys_only: bool = False) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` at one revision, and that revision."""
        request = {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix)), "keys_only": keys_only}
        answer = self._post("/kv/range", request)
        return int(answer["header"]["revision"]), [_kv(item) for item in answer.get("kvs", [])]

    def get(self, key: str) -> KeyValue | None:
        answer = self._post("/kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        """All of ``success`` if every comparison holds, else nothing; says which."""
        answer = self._post("/kv/txn", {"compare": compare, "success": success})
        return bool(answer.get("succeeded"))

    def grant(self, ttl: int) -> int:
        return int(self._post("/lease/grant", {"TTL": ttl})["ID"])

    def keep_alive(self, lease: int) -> int:
        """Refresh ``lease``; its remaining TTL, 0 when it has expired (or never existed)."""
        answer = self._post("/lease/keepalive", {"ID": lease})
        return int((answer.get("result") or {}).get("TTL", 0))

    def time_to_live(self, lease: int) -> int:
        return int(self._post("/kv/lease/timetolive", {"ID": lease}).get("TTL", -1))

    def watch(self, prefix: str) -> tuple[Iterator[Any], Callable[[], None]]:
        """Changes under ``prefix`` (events; their content is not needed, only that they happened)."""
        return self._call(lambda c: c.watch_prefix(prefix))


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(
        base64.b64decode(item["key"]).decode(),
        base64.b64decode(item.get("value", "")),
        int(item.get("mod_revision", 0)),
        int(item.get("lease", 0)),
    )


def _short(exc: Exception | None) -> str:
    """requests' messages run to several hundred characters: keep what a user acts on."""
    text = str(getattr(exc, "detail_text", None) or exc or "no endpoint")
    for cause in ("Connection refused", "timed out", "No route to host", "Name or service not known"):
        if cause.lower() in text.lower():
            return cause.lower()
    return text if len(text) < 200 else text[:200] + "..."
