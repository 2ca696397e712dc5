"""``HostStore`` on a SQLite file (``STATE_DIR/hostaware.db``), shared by the gateway and the CLI.

Threads and processes (the gateway and the CLI) share the file; WAL: readers never wait for the
writer. Each thread keeps one connection (the monitor reads the rules every second: opening a
connection each time would cost more than the reading); ``synchronous=NORMAL``, safe in WAL mode,
spares the heartbeat an fsync per write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from powerstrip.adapters.hostaware.model import (LOST_AFTER, MAX_MESSAGES, Conflict, HostRecord, Level, Message,
                                                  NotFound, Rule, parse_rule)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    name     TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   REAL NOT NULL,
    level  TEXT NOT NULL,
    host   TEXT NOT NULL,
    text   TEXT NOT NULL,
    rule   TEXT,
    metric TEXT,
    value  REAL,
    action TEXT
);
CREATE TABLE IF NOT EXISTS hosts (
    name     TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    seen     REAL NOT NULL
);
"""
_MESSAGE_COLUMNS = "id, time, level, host, text, rule, metric, value, action"


class SqliteHostStore:
    def __init__(self, path: Path, max_messages: int = MAX_MESSAGES, lost_after: float = LOST_AFTER) -> None:
        self.path = path
        self.max_messages = max_messages
        self.lost_after = lost_after
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._lock:
                self._opened.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def add_rule(self, rule: Rule) -> None:
        with self._write() as db:
            try:
                db.execute("INSERT INTO rules VALUES (?, ?)", (rule.name, json.dumps(rule.document())))
            except sqlite3.IntegrityError:
                raise Conflict(f"rule {rule.name!r} exists (delete it first to change it)") from None

    def rules(self) -> list[Rule]:
        return [parse_rule(doc) for (doc,) in self._connect().execute("SELECT document FROM rules ORDER BY name")]

    def delete_rule(self, name: str) -> Rule:
        with self._write() as db:
            row = db.execute("SELECT document FROM rules WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no rule {name!r}")
            db.execute("DELETE FROM rules WHERE name = ?", (name,))
        return parse_rule(row[0])

    def append(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        with self._write() as db:
            db.executemany(f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(m.time, m.level.value, m.host, m.text, m.rule, m.metric, m.value, m.action)
                            for m in messages])
            db.execute("DELETE FROM messages WHERE id <= (SELECT MAX(id) FROM messages) - ?", (self.max_messages,))

    def messages(self, after: int = 0, host: str | None = None, limit: int = 1000) -> list[Message]:
        query = f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id > ?"
        args: list[object] = [after]
        if host is not None:
            query += " AND host = ?"
            args.append(host)
        rows = self._connect().execute(query + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [Message(t, Level(level), h, text, rule, metric, value, action, i)
                for i, t, level, h, text, rule, metric, value, action in reversed(rows)]

    def publish(self, record: HostRecord) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO hosts VALUES (?, ?, ?)",
                       (record.name, json.dumps(record.document()), time.time()))

    def hosts(self) -> list[HostRecord]:
        now = time.time()
        rows = self._connect().execute("SELECT document, seen FROM hosts ORDER BY name").fetchall()
        return [HostRecord.from_document(json.loads(doc), lost=now - seen > self.lost_after) for doc, seen in rows]

    def close(self) -> None:
        """Close every thread's connection (the store is not used after this)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for db in opened:
            db.close()
        self._local = threading.local()
