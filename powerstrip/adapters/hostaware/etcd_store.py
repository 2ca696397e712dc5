"""``HostStore`` in etcd (``--cluster``): rules, messages and every member's metrics, cluster-wide.

Keys (under ``/powerstrip/hostaware/``)::

    rules/NAME                 the rule's JSON document
    messages/TIME_NS-HOST      a message; its id is the etcd revision that wrote it (one per put),
                               so ids increase across the whole cluster and ``--follow`` resumes exactly
    hosts/NAME                 the member's last published state (metrics, source, rule states)
    alive/NAME                 attached to the member's lease: gone when the member stops renewing it,
                               and then ``hosts/NAME`` is shown as lost

The etcd client is the ``net`` adapter's (endpoint failover, one error type); the few requests it has
no helper for (a filtered range, a range delete) are posted through it as etcd's JSON gateway takes them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from powerstrip.adapters.hostaware.model import (MAX_MESSAGES, Conflict, HostRecord, Message, NotFound, Rule,
                                                  StoreUnavailable, parse_rule)
from powerstrip.adapters.net import etcd_client
from powerstrip.adapters.net.etcd_client import Etcd, put, unchanged
from powerstrip.adapters.net.model import StoreUnavailable as NetStoreUnavailable

PREFIX = "/powerstrip/hostaware/"
RULES = PREFIX + "rules/"
MESSAGES = PREFIX + "messages/"
HOSTS = PREFIX + "hosts/"
ALIVE = PREFIX + "alive/"
LEASE_TTL = 15
TRIM_EVERY = 100  # appends between two retention checks (a count is one range request)


class HostEtcd(Etcd):
    """The ``net`` adapter's etcd client, with the range options the messages view needs."""

    def request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._post(path, body)
        except NetStoreUnavailable as exc:
            raise StoreUnavailable(exc.message) from None


def _range(prefix: str, **options: Any) -> dict[str, Any]:
    return {"key": etcd_client._b64(prefix), "range_end": etcd_client._b64(etcd_client._prefix_end(prefix)), **options}


class EtcdHostStore:
    def __init__(self, etcd: HostEtcd, host: str, max_messages: int = MAX_MESSAGES, lease_ttl: int = LEASE_TTL) -> None:
        self.etcd = etcd
        self.host = host
        self.max_messages = max_messages
        self.lease_ttl = lease_ttl
        self._lease: int | None = None
        self._renewed = 0.0
        self._appends = 0
        self._lock = threading.Lock()

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        answer = self.etcd.request("/kv/txn", {"compare": compare, "success": success})
        return bool(answer.get("succeeded"))

    def _kvs(self, request: dict[str, Any]) -> list[etcd_client.KeyValue]:
        return [etcd_client._kv(item) for item in self.etcd.request("/kv/range", request).get("kvs", [])]

    def add_rule(self, rule: Rule) -> None:
        key = RULES + rule.name
        if not self._txn([unchanged(key, 0)], [put(key, json.dumps(rule.document()))]):
            raise Conflict(f"rule {rule.name!r} exists (delete it first to change it)")

    def rules(self) -> list[Rule]:
        return [parse_rule(kv.value) for kv in self._kvs(_range(RULES))]

    def delete_rule(self, name: str) -> Rule:
        key = RULES + name
        found = self._kvs({"key": etcd_client._b64(key)})
        if not found or not self._txn([unchanged(key, found[0].mod_revision)], [etcd_client.delete(key)]):
            raise NotFound(f"no rule {name!r}")
        return parse_rule(found[0].value)

    def append(self, messages: Sequence[Message]) -> None:
        for message in messages:  # one put each: its revision is its id
            key = f"{MESSAGES}{int(message.time * 1e9):019d}-{message.host}"
            document = message.document()
            del document["id"]
            self._txn([], [put(key, json.dumps(document))])
        with self._lock:
            self._appends += len(messages)
            due = self._appends >= TRIM_EVERY
            if due:
                self._appends = 0
        if due:
            self._trim()

    def _trim(self) -> None:
        count = int(self.etcd.request("/kv/range", _range(MESSAGES, count_only=True)).get("count", 0))
        excess = count - self.max_messages
        if excess <= 0:
            return
        oldest = self._kvs(_range(MESSAGES, keys_only=True, limit=excess, sort_order="ASCEND", sort_target="KEY"))
        if oldest:
            end = etcd_client._b64(oldest[-1].key + "\0")
            self._txn([], [{"request_delete_range": {"key": etcd_client._b64(MESSAGES), "range_end": end}}])

    def messages(self, after: int = 0, host: str | None = None, limit: int = 1000) -> list[Message]:
        options: dict[str, Any] = {"min_mod_revision": after + 1} if after else {}
        if host is None:  # the newest ``limit`` only (with a host filter they are picked here)
            options.update(limit=limit, sort_order="DESCEND", sort_target="MOD")
        kvs = self._kvs(_range(MESSAGES, **options))
        found = []
        for kv in kvs:
            document = json.loads(kv.value)
            if host is None or document.get("host") == host:
                found.append(Message.from_document({**document, "id": kv.mod_revision}))
        found.sort(key=lambda m: m.id)
        return found[-limit:]

    def publish(self, record: HostRecord) -> None:
        """The record, and the member's liveness: its lease renewed every third of the TTL (granted again
        when it expired, e.g. after an outage of the store)."""
        now = time.monotonic()
        operations = [put(HOSTS + record.name, json.dumps(record.document()))]
        if self._lease is not None and now - self._renewed >= self.lease_ttl / 3:
            if self._keep_alive(self._lease) <= 0:
                self._lease = None
            else:
                self._renewed = now
        if self._lease is None:
            self._lease = int(self.etcd.request("/lease/grant", {"TTL": self.lease_ttl})["ID"])
            self._renewed = now
            operations.append(put(ALIVE + record.name, str(time.time()), lease=self._lease))
        self._txn([], operations)

    def _keep_alive(self, lease: int) -> int:
        answer = self.etcd.request("/lease/keepalive", {"ID": lease})
        return int((answer.get("result") or {}).get("TTL", 0))

    def hosts(self) -> list[HostRecord]:
        alive = {kv.key.removeprefix(ALIVE) for kv in self._kvs(_range(ALIVE, keys_only=True))}
        records = [json.loads(kv.value) for kv in self._kvs(_range(HOSTS))]
        return [HostRecord.from_document(doc, lost=doc["name"] not in alive) for doc in records]

    def close(self) -> None:
        """Leaves the lease to expire: a restart publishes again before it does."""
