"""SQL for accounting records, run on the SQLite store's thread.

The table is separate from the sessions table and copies what it needs,
so pruning records never touches sessions, and it is created on open
whatever the schema version, like the other side tables.
"""

from __future__ import annotations

import sqlite3

from capport.acct.records import AccountingRecord

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS accounting (
        session_id INTEGER PRIMARY KEY,
        mac        TEXT NOT NULL,
        ip         TEXT NOT NULL,
        method     TEXT NOT NULL,
        subject    TEXT,
        started_at REAL NOT NULL,
        ended_at   REAL NOT NULL,
        bytes_up   INTEGER NOT NULL,
        bytes_down INTEGER NOT NULL,
        end_reason TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS accounting_by_end ON accounting (ended_at)",
)

_COLUMNS = (
    "session_id, mac, ip, method, subject, started_at, ended_at, bytes_up, "
    "bytes_down, end_reason"
)


def create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def add_record(db: sqlite3.Connection, record: AccountingRecord) -> None:
    # A session ends once; a second record for it (a replay after a crash)
    # replaces the first rather than failing.
    db.execute(
        f"INSERT OR REPLACE INTO accounting ({_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.session_id,
            record.mac,
            record.ip,
            record.method,
            record.subject,
            record.started_at,
            record.ended_at,
            record.bytes_up,
            record.bytes_down,
            record.end_reason,
        ),
    )


def find_records(
    db: sqlite3.Connection, since: float, until: float
) -> list[AccountingRecord]:
    """Return the records of sessions that overlap [since, until), oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM accounting WHERE ended_at >= ? AND started_at < ? "
        "ORDER BY started_at, session_id",
        (since, until),
    ).fetchall()
    return [AccountingRecord(*row) for row in rows]


def prune(db: sqlite3.Connection, before: float) -> int:
    """Delete the records of sessions that ended before `before`; return how many."""
    cursor = db.execute("DELETE FROM accounting WHERE ended_at < ?", (before,))
    return cursor.rowcount
