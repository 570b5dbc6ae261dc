"""SQLite session store: one file, WAL journal, one writer thread."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from capport.errors import StoreError
from capport.models import Device, EndReason, Session

log = logging.getLogger("capport.store")

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id         INTEGER PRIMARY KEY,
    mac        TEXT NOT NULL,
    ip         TEXT NOT NULL,
    method     TEXT NOT NULL,
    started_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at   REAL,
    end_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS sessions_one_active_per_device
    ON sessions (mac, ip) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_active_by_expiry
    ON sessions (expires_at) WHERE ended_at IS NULL;
"""

_COLUMNS = "id, mac, ip, method, started_at, expires_at, ended_at, end_reason"


class SQLiteStore:
    """A Store in one SQLite file.

    All database work runs on one dedicated thread, so the connection is
    never shared between threads and the event loop never waits on disk.
    """

    def __init__(self, path: str | Path, synchronous: str = "full") -> None:
        self._path = str(path)
        self._synchronous = synchronous.upper()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="capport-store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)
        log.info("Store opened at %s.", self._path)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def secret(self) -> bytes:
        return await self._run(self._secret)

    async def start_session(
        self, device: Device, method: str, duration: float, now: float
    ) -> Session:
        return await self._run(lambda: self._start(device, method, duration, now))

    async def end_session(
        self, session_id: int, reason: str, now: float
    ) -> Session | None:
        return await self._run(lambda: self._end(session_id, reason, now))

    async def active_sessions(self) -> list[Session]:
        return await self._run(self._active)

    async def expire_due(self, now: float) -> list[Session]:
        return await self._run(lambda: self._expire(now))

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work)
        except sqlite3.Error as error:
            raise StoreError(f"session store {self._path} failed: {error}") from error

    # The methods below run on the store thread only.

    def _open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this capport "
                f"({SCHEMA_VERSION}); upgrade capport"
            )
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the store is not open")
        return self._db

    def _secret(self) -> bytes:
        row = self._conn.execute("SELECT value FROM meta WHERE key='secret'").fetchone()
        if row is not None:
            return bytes(row[0])
        value = secrets.token_bytes(32)
        self._conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (value,)
        )
        row = self._conn.execute("SELECT value FROM meta WHERE key='secret'").fetchone()
        return bytes(row[0])

    def _start(
        self, device: Device, method: str, duration: float, now: float
    ) -> Session:
        db = self._conn
        with _transaction(db):
            db.execute(
                "UPDATE sessions SET ended_at=?, end_reason=? "
                "WHERE mac=? AND ip=? AND ended_at IS NULL",
                (now, EndReason.REPLACED, device.mac, str(device.ip)),
            )
            cursor = db.execute(
                "INSERT INTO sessions (mac, ip, method, started_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (device.mac, str(device.ip), method, now, now + duration),
            )
        session_id = cursor.lastrowid
        assert session_id is not None
        return Session(session_id, device, method, now, now + duration)

    def _end(self, session_id: int, reason: str, now: float) -> Session | None:
        db = self._conn
        with _transaction(db):
            row = db.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE id=? AND ended_at IS NULL",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE sessions SET ended_at=?, end_reason=? WHERE id=?",
                (now, reason, session_id),
            )
        return _session(row[:6] + (now, reason))

    def _active(self) -> list[Session]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE ended_at IS NULL ORDER BY id"
        ).fetchall()
        return [_session(row) for row in rows]

    def _expire(self, now: float) -> list[Session]:
        db = self._conn
        with _transaction(db):
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM sessions "
                "WHERE ended_at IS NULL AND expires_at <= ? ORDER BY id",
                (now,),
            ).fetchall()
            db.executemany(
                "UPDATE sessions SET ended_at=?, end_reason=? WHERE id=?",
                [(now, EndReason.EXPIRED, row[0]) for row in rows],
            )
        return [_session(row[:6] + (now, EndReason.EXPIRED)) for row in rows]


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _session(row: tuple) -> Session:
    session_id, mac, ip, method, started, expires, ended, reason = row
    return Session(
        session_id, Device.parse(mac, ip), method, started, expires, ended, reason
    )
