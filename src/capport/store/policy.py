"""SQLite tables for session limits, usage and MAC list overrides.

They sit beside the sessions table and reference it by id, so the tables
are created on open whatever the schema version, and an older capport that
does not know them leaves them alone. Every function runs on the store's
own thread with its connection.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable

from capport.accounting import SessionTerms, UsageRecord
from capport.enforce.base import Limits, Traffic

_NO_TRAFFIC = Traffic()

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS session_terms (
        session_id    INTEGER PRIMARY KEY REFERENCES sessions (id),
        quota_up      INTEGER,
        quota_down    INTEGER,
        quota_total   INTEGER,
        rate_up       INTEGER,
        rate_down     INTEGER,
        idle_timeout  REAL,
        boot_id       TEXT,
        boot_deadline REAL,
        bytes_up      INTEGER NOT NULL DEFAULT 0,
        bytes_down    INTEGER NOT NULL DEFAULT 0,
        base_up       INTEGER NOT NULL DEFAULT 0,
        base_down     INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS mac_overrides (
        mac        TEXT PRIMARY KEY,
        policy     TEXT NOT NULL,
        changed_at REAL NOT NULL
    )""",
)


def create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def save_terms(db: sqlite3.Connection, session_id: int, terms: SessionTerms) -> None:
    limits = terms.limits
    db.execute(
        "INSERT OR REPLACE INTO session_terms (session_id, quota_up, quota_down, "
        "quota_total, rate_up, rate_down, idle_timeout, boot_id, boot_deadline) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            limits.quota_up,
            limits.quota_down,
            limits.quota_total,
            limits.rate_up,
            limits.rate_down,
            terms.idle_timeout,
            terms.boot_id,
            terms.boot_deadline,
        ),
    )


def load_terms(
    db: sqlite3.Connection, session_ids: Iterable[int]
) -> dict[int, tuple[SessionTerms, UsageRecord]]:
    """Return the terms and usage of each session that has them."""
    wanted = set(session_ids)
    # Most sessions have the same limits and boot id, so they share one
    # Limits and one string instead of a copy for each.
    shared_limits: dict[tuple[int | None, ...], Limits] = {}
    rows = db.execute(
        "SELECT session_id, quota_up, quota_down, quota_total, rate_up, rate_down, "
        "idle_timeout, boot_id, boot_deadline, bytes_up, bytes_down, base_up, "
        "base_down FROM session_terms t JOIN sessions s ON s.id = t.session_id "
        "WHERE s.ended_at IS NULL"
    )
    found = {}
    for row in rows:
        session_id = row[0]
        if session_id not in wanted:
            continue
        limits = shared_limits.get(row[1:6])
        if limits is None:
            limits = shared_limits[row[1:6]] = Limits(*row[1:6])
        boot_id = None if row[7] is None else sys.intern(row[7])
        terms = SessionTerms(limits, row[6], boot_id, row[8])
        usage = UsageRecord(
            session_id, _traffic(row[9], row[10]), _traffic(*row[11:13])
        )
        found[session_id] = (terms, usage)
    return found


def _traffic(up: int, down: int) -> Traffic:
    return _NO_TRAFFIC if up == 0 and down == 0 else Traffic(up, down)


def record_usage(db: sqlite3.Connection, records: Iterable[UsageRecord]) -> None:
    db.executemany(
        "INSERT INTO session_terms (session_id, bytes_up, bytes_down, base_up, "
        "base_down) VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
        "bytes_up=excluded.bytes_up, bytes_down=excluded.bytes_down, "
        "base_up=excluded.base_up, base_down=excluded.base_down",
        [
            (r.session_id, r.total.up, r.total.down, r.base.up, r.base.down)
            for r in records
        ],
    )


def mac_overrides(db: sqlite3.Connection) -> dict[str, str]:
    rows = db.execute("SELECT mac, policy FROM mac_overrides").fetchall()
    return {mac: policy for mac, policy in rows}


def set_mac_override(db: sqlite3.Connection, mac: str, policy: str, now: float) -> None:
    db.execute(
        "INSERT OR REPLACE INTO mac_overrides (mac, policy, changed_at) "
        "VALUES (?, ?, ?)",
        (mac, policy, now),
    )


def set_expiry(db: sqlite3.Connection, expiries: Iterable[tuple[int, float]]) -> None:
    """Move the stored wall-clock end of active sessions, by session id."""
    db.executemany(
        "UPDATE sessions SET expires_at=? WHERE id=? AND ended_at IS NULL",
        [(expires_at, session_id) for session_id, expires_at in expiries],
    )
