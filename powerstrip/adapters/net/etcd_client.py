"""A thin layer over etcd3gw: several endpoints with failover, revisions, transactions, one error type.

etcd3gw speaks etcd's v3 JSON gateway over HTTP or HTTPS (no gRPC stack to build), and is kept by
the OpenStack project. Its ``get``/``put`` helpers hide the revisions that compare-and-swap needs,
so ranges and transactions are posted as the gateway's JSON here, with the client's session,
URLs and error mapping. Any failure to reach the cluster becomes ``StoreUnavailable`` (503), with
a message that says what to fix when it is TLS or authentication that failed.

TLS (``etcds://``) is etcd3gw's own: a CA bundle and a client certificate on its requests session.
User/password authentication is not in etcd3gw, and is small: ``POST /v3/auth/authenticate`` gives
a token, sent as the ``Authorization`` header of every later request (watches too, as they use the
same session); a token that etcd no longer accepts (it expires after ``--auth-token-ttl``, and with
an etcd restart) is replaced once and the request repeated.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import etcd3gw
from etcd3gw import exceptions as etcd_errors

from powerstrip.adapters.net.model import StoreUnavailable

T = TypeVar("T")
REQUEST_TIMEOUT = 5.0
_UNREACHABLE = (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError, etcd_errors.InternalServerError)


@dataclass(frozen=True, slots=True)
class StoreTLS:
    """TLS to etcd, as etcdctl's ``--cacert``, ``--cert`` and ``--key`` (no CA: the system's trusted ones)."""

    cacert: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """An etcd user, as etcdctl's ``--user NAME:PASSWORD``."""

    user: str
    password: str = field(repr=False)


class _AuthRejected(Exception):
    """etcd no longer accepts the token the session carries."""


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

    def __init__(self, endpoints: tuple[tuple[str, int], ...], timeout: float = REQUEST_TIMEOUT,
                 tls: StoreTLS | None = None, credentials: Credentials | None = None) -> None:
        scheme = "etcds" if tls is not None else "etcd"
        self.url = f"{scheme}://" + ",".join(f"{h}:{p}" for h, p in endpoints)
        self._credentials = credentials
        self._tls = tls is not None
        self._client_cert = bool(tls and tls.cert)
        self._clients = [
            etcd3gw.Etcd3Client(host=h, port=p, protocol="https" if tls else "http", timeout=timeout, api_path="/v3/",
                                ca_cert=tls.cacert if tls else None, cert_cert=tls.cert if tls else None,
                                cert_key=tls.key if tls else None)
            for h, p in endpoints
        ]
        if tls is not None and tls.cacert:
            for client in self._clients:
                # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override a session's CA bundle:
                # the --cluster-cacert the operator gave must win (etcd is reached without proxies anyway)
                client.session.trust_env = False
        self._current = 0
        self._lock = threading.Lock()

    def _call(self, action: Callable[[etcd3gw.Etcd3Client], T]) -> T:
        """Run ``action`` on the current endpoint, trying the others when it cannot be reached."""
        with self._lock:
            first = self._current
        last: Exception | None = None
        for step in range(len(self._clients)):
            index = (first + step) % len(self._clients)
            client = self._clients[index]
            try:
                try:
                    result = self._authorized(client, action)
                except _AuthRejected:  # expired (or etcd restarted): a new token, once
                    client.session.headers.pop("Authorization", None)
                    result = self._authorized(client, action)
            except _AuthRejected:
                raise StoreUnavailable(f"cluster store {self.url}: etcd refused a fresh authentication token") from None
            except _UNREACHABLE as exc:
                last = exc
                continue
            except etcd_errors.Etcd3Exception as exc:
                raise StoreUnavailable(f"cluster store {self.url}: {self._explain(exc)}") from None
            with self._lock:
                self._current = index
            return result
        tls = _tls_failure(last, self._client_cert) if self._tls else None
        raise StoreUnavailable(f"cluster store {self.url}: {tls}" if tls else
                               f"cluster store {self.url} unreachable: {_short(last)}")

    def _authorized(self, client: etcd3gw.Etcd3Client, action: Callable[[etcd3gw.Etcd3Client], T]) -> T:
        if self._credentials is not None and "Authorization" not in client.session.headers:
            self._authenticate(client)
        try:
            return action(client)
        except etcd_errors.Etcd3Exception as exc:
            if self._credentials is not None and "invalid auth token" in _detail(exc):
                raise _AuthRejected() from None
            raise

    def _authenticate(self, client: etcd3gw.Etcd3Client) -> None:
        assert self._credentials is not None
        answer = client.post(client.get_url("/auth/authenticate"),
                             json={"name": self._credentials.user, "password": self._credentials.password})
        client.session.headers["Authorization"] = str(answer["token"])

    def _explain(self, exc: etcd_errors.Etcd3Exception) -> str:
        """etcd's refusal, with what the user can do about it."""
        detail = _detail(exc)
        user = self._credentials.user if self._credentials else None
        if "user name is empty" in detail or "invalid auth token" in detail:
            return "the cluster store requires authentication: give --cluster-user NAME:PASSWORD"
        if "authentication failed" in detail:
            return f"authentication failed for user {user!r}: wrong user name or password ({detail})"
        if "permission denied" in detail:
            return f"user {user!r} may not use the keys under /powerstrip/ (etcd role permissions): {detail}"
        if "authentication is not enabled" in detail:
            return f"--cluster-user given, but the cluster store has authentication disabled ({detail})"
        if "CommonName of client" in detail:
            return ("etcd's JSON gateway refuses a client certificate with a CommonName while authentication is on: "
                    "issue --cluster-cert without a CN (e.g. openssl -subj /O=powerstrip)")
        return detail

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


def _detail(exc: etcd_errors.Etcd3Exception) -> str:
    """etcd's own message (the gateway answers ``{"error": ..., "message": ..., "code": ...}``)."""
    text = str(exc.detail_text or exc)
    try:
        return str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        return text


_TLS_CAUSES = (  # (what requests/OpenSSL says, what it means to the user)
    ("certificate verify failed", "TLS: the cluster store's certificate is not trusted (check --cluster-cacert)"),
    ("wrong version number", "TLS: the cluster store does not speak TLS (use etcd://)"),
    ("key values mismatch", "TLS: --cluster-key does not belong to --cluster-cert"),
    ("pem lib", "TLS: --cluster-cert or --cluster-key is not a PEM certificate/key"),
)
# How a server that refuses the client's certificate (or its absence) ends the handshake: an alert,
# or with TLS 1.3 often just a close; a server without TLS closes or resets, as it happens
_CLIENT_REFUSED = ("alert unknown ca", "alert bad certificate", "alert certificate required", "handshake failure")
_CLOSED = ("eof occurred in violation of protocol", "connection reset by peer")


def _tls_failure(exc: Exception | None, client_cert: bool) -> str | None:
    """What a failed TLS handshake means to the user, or ``None`` when it was not one (asked of etcds:// only)."""
    text = str(getattr(exc, "detail_text", None) or exc or "")
    lowered = text.lower()
    closed = any(cause in lowered for cause in _CLOSED)
    if closed or any(cause in lowered for cause in _CLIENT_REFUSED):
        what = ("it did not accept this client's certificate (check --cluster-cert/--cluster-key against the CA the "
                "server trusts)" if client_cert else "it requires a client certificate (--cluster-cert/--cluster-key)")
        if closed:
            return f"TLS: the cluster store closed the connection in the handshake: {what}, or it does not serve TLS " \
                   "(then use etcd://)"
        return f"TLS: the cluster store refused the handshake: {what}: {_openssl_reason(text)}"
    for cause, meaning in _TLS_CAUSES:
        if cause in lowered:
            return f"{meaning}: {_openssl_reason(text) or cause}"
    return None


def _short(exc: Exception | None) -> str:
    """requests' messages run to several hundred characters: keep what a user acts on."""
    text = str(getattr(exc, "detail_text", None) or exc or "no endpoint")
    for cause in ("Connection refused", "Connection reset by peer", "timed out", "No route to host",
                  "Name or service not known"):
        if cause.lower() in text.lower():
            return cause.lower()
    if "remote end closed connection without response" in text.lower():
        return "the server closed the connection without an answer (if it serves TLS, use etcds://)"
    return text if len(text) < 200 else text[:200] + "..."


def _openssl_reason(text: str) -> str:
    """The ``[SSL: ...] reason (_ssl.c:N)`` part of an SSL error, without the request's noise."""
    start = text.find("[SSL")
    if start < 0:
        return ""
    end = text.find("(_ssl.c", start)
    return text[start:end if end > 0 else start + 200].strip()
