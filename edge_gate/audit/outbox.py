"""Durable outbox: signed events wait here (SQLite, WAL, ``synchronous=FULL``) until PUBACK.

Rules
* An event is committed (fsync'd) here before any publish attempt; it is deleted only after a
  successful PUBACK (:meth:`Outbox.ack`). A crash at any instant loses nothing that was appended.
* ``seq`` is allocated inside the same transaction as the insert, from a counter stored in the
  database, so it is monotonic per gateway across restarts and across processes (the daemon and the
  enroll CLI may append to the same file; SQLite's write lock serialises them).
* **Overflow policy** (the outbox holds at most ``max_events``): when full, the oldest
  *non-security* event (camera, service, test; see ``events.SECURITY_TYPES``) is evicted to make
  room. When every stored event is a security event, the *new* event is refused
  instead, so that a flood cannot push older evidence out. Either way the event's ``seq``
  is used up (the gap is visible to ``audit verify``) and a drop counter is incremented;
  once the publisher is back online it turns the counters into one signed ``audit.dropped``
  event (:meth:`Outbox.take_drop_report`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_gate.errors import AuditError
from edge_gate.fsutil import open_private

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL,"
    " door TEXT,"
    " security INTEGER NOT NULL,"
    " payload BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_low_priority ON events (security, seq)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_META_KEYS = ("last_seq", "count", "dropped", "dropped_security")


@dataclass(frozen=True)
class OutboxEntry:
    """A signed event as the outbox stores it."""

    event_id: str
    event_type: str
    door: str | None
    is_security: bool
    payload: bytes


@dataclass(frozen=True)
class StoredEvent:
    """A row waiting for delivery."""

    seq: int
    door: str | None
    payload: bytes


@dataclass(frozen=True)
class AppendResult:
    """``stored`` is False when the overflow policy refused the event (its seq is still used)."""

    seq: int
    stored: bool
    evicted_seq: int | None = None


@dataclass(frozen=True)
class DropCounters:
    """Events lost to the overflow policy since the last ``audit.dropped`` report."""

    dropped: int
    dropped_security: int

    @property
    def total(self) -> int:
        return self.dropped + self.dropped_security


class Outbox:
    """Thread-safe handle on the outbox database. Open one per process; close it when done."""

    def __init__(self, path: Path, max_events: int, *, busy_timeout_s: float = 10.0) -> None:
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self.path = Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # create it private before SQLite does (its WAL and shm files copy this mode)
            os.close(open_private(self.path))  # owned like its directory when root makes it
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                for stmt in _SCHEMA:
                    self._db.execute(stmt)
                self._db.executemany(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)",
                    [(k,) for k in _META_KEYS],
                )
                (count,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
                self._set("count", int(count))
        except (OSError, sqlite3.Error) as e:
            raise AuditError(f"{self.path}: cannot open outbox: {e}") from e

    # -- helpers -------------------------------------------------------------------------------

    def _transaction(self) -> _Txn:
        return _Txn(self._db)

    def _get(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set(self, key: str, value: int) -> None:
        self._db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    def _insert(self, seq: int, entry: OutboxEntry) -> None:
        self._db.execute(
            "INSERT INTO events (seq, id, type, door, security, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (
                seq,
                entry.event_id,
                entry.event_type,
                entry.door,
                int(entry.is_security),
                entry.payload,
            ),
        )

    # -- writing -------------------------------------------------------------------------------

    def append(self, make: Callable[[int], OutboxEntry]) -> AppendResult:
        """Allocate the next seq, call ``make(seq)`` to build the signed entry, store it durably."""
        return self.append_many([make])[0]

    def append_many(self, makes: Sequence[Callable[[int], OutboxEntry]]) -> list[AppendResult]:
        """Like :meth:`append` for several events in one transaction (one fsync)."""
        with self._lock:
            try:
                with self._transaction():
                    return [self._append_locked(make) for make in makes]
            except sqlite3.Error as e:
                raise AuditError(f"{self.path}: append failed: {e}") from e

    def _append_locked(self, make: Callable[[int], OutboxEntry]) -> AppendResult:
        seq = self._get("last_seq") + 1
        self._set("last_seq", seq)
        entry = make(seq)
        count = self._get("count")
        evicted: int | None = None
        if count >= self.max_events:
            row = self._db.execute(
                "SELECT seq FROM events WHERE security = 0 ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                key = "dropped_security" if entry.is_security else "dropped"
                self._set(key, self._get(key) + 1)
                return AppendResult(seq=seq, stored=False)
            evicted = int(row[0])
            self._db.execute("DELETE FROM events WHERE seq = ?", (evicted,))
            self._set("dropped", self._get("dropped") + 1)
            count -= 1
        self._insert(seq, entry)
        self._set("count", count + 1)
        return AppendResult(seq=seq, stored=True, evicted_seq=evicted)

    def take_drop_report(
        self, make: Callable[[int, DropCounters], OutboxEntry]
    ) -> AppendResult | None:
        """If events were dropped, store one report built by ``make`` and reset the counters.

        The report may exceed ``max_events`` by one; the next append evicts as usual.
        """
        with self._lock:
            try:
                with self._transaction():
                    drops = DropCounters(self._get("dropped"), self._get("dropped_security"))
                    if drops.total == 0:
                        return None
                    seq = self._get("last_seq") + 1
                    self._set("last_seq", seq)
                    self._insert(seq, make(seq, drops))
                    self._set("count", self._get("count") + 1)
                    self._set("dropped", 0)
                    self._set("dropped_security", 0)
                    return AppendResult(seq=seq, stored=True)
            except sqlite3.Error as e:
                raise AuditError(f"{self.path}: drop report failed: {e}") from e

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete delivered events (after their PUBACK); return how many rows went."""
        rows = [(s,) for s in seqs]
        if not rows:
            return 0
        with self._lock:
            try:
                with self._transaction():
                    cur = self._db.executemany("DELETE FROM events WHERE seq = ?", rows)
                    removed = max(cur.rowcount, 0)
                    self._set("count", max(self._get("count") - removed, 0))
                    return removed
            except sqlite3.Error as e:
                raise AuditError(f"{self.path}: ack failed: {e}") from e

    # -- reading -------------------------------------------------------------------------------

    def pending(self, after_seq: int = 0, limit: int = 500) -> list[StoredEvent]:
        """Up to ``limit`` waiting events with ``seq > after_seq``, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, door, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
            except sqlite3.Error as e:
                raise AuditError(f"{self.path}: read failed: {e}") from e
        return [StoredEvent(int(s), d, bytes(p)) for s, d, p in rows]

    def count(self) -> int:
        """Events waiting for delivery."""
        with self._lock:
            return self._read_meta("count")

    def last_seq(self) -> int:
        """The highest seq ever allocated (0 when none)."""
        with self._lock:
            return self._read_meta("last_seq")

    def drops(self) -> DropCounters:
        """Drops not yet reported."""
        with self._lock:
            return DropCounters(self._read_meta("dropped"), self._read_meta("dropped_security"))

    def _read_meta(self, key: str) -> int:
        try:
            return self._get(key)
        except sqlite3.Error as e:
            raise AuditError(f"{self.path}: read failed: {e}") from e

    def pragma(self, name: str) -> object:
        """Read a PRAGMA (tests check journal_mode and synchronous)."""
        if name not in ("journal_mode", "synchronous"):
            raise ValueError(name)
        with self._lock:
            return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Txn:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error): takes the write lock up front so
    two processes cannot allocate the same seq."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
