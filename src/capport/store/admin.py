"""SQLite tables for API tokens and the per-minute history samples.

Like the other tables beside the versioned schema, they are created on open
if missing, so an older capport that does not know them leaves them alone.
Every function runs on the store's own thread with its connection.
"""

from __future__ import annotations

import sqlite3

from capport.admin.records import ApiToken, Sample
from capport.errors import RecordExists, RecordNotFound

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_tokens (
        name         TEXT PRIMARY KEY,
        digest       TEXT NOT NULL UNIQUE,
        created_at   REAL NOT NULL,
        last_used_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS samples (
        taken_at        REAL PRIMARY KEY,
        active_sessions INTEGER NOT NULL,
        forwarded_bytes INTEGER NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (started_at)""",
)

_TOKEN_COLUMNS = "name, digest, created_at, last_used_at"


def create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


# API tokens


def add_token(db: sqlite3.Connection, token: ApiToken) -> None:
    try:
        db.execute(
            f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?)",
            (token.name, token.digest, token.created_at, token.last_used_at),
        )
    except sqlite3.IntegrityError:
        raise RecordExists(
            f"API token {token.name!r} already exists; revoke it first or "
            "choose another name"
        ) from None


def list_tokens(db: sqlite3.Connection) -> list[ApiToken]:
    rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY name")
    return [ApiToken(*row) for row in rows.fetchall()]


def find_token(db: sqlite3.Connection, digest: str) -> ApiToken | None:
    row = db.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE digest=?", (digest,)
    ).fetchone()
    return None if row is None else ApiToken(*row)


def touch_token(db: sqlite3.Connection, name: str, now: float) -> None:
    db.execute("UPDATE api_tokens SET last_used_at=? WHERE name=?", (now, name))


def remove_token(db: sqlite3.Connection, name: str) -> None:
    if db.execute("DELETE FROM api_tokens WHERE name=?", (name,)).rowcount == 0:
        raise RecordNotFound(
            f"API token {name!r} not found; `capport tokens list` shows the tokens"
        )


# History samples


def add_sample(db: sqlite3.Connection, sample: Sample, keep_after: float) -> None:
    """Store sample and delete the samples taken before keep_after."""
    db.execute(
        "INSERT OR REPLACE INTO samples (taken_at, active_sessions, "
        "forwarded_bytes) VALUES (?, ?, ?)",
        (sample.taken_at, sample.active_sessions, sample.forwarded_bytes),
    )
    db.execute("DELETE FROM samples WHERE taken_at < ?", (keep_after,))


def list_samples(db: sqlite3.Connection, since: float) -> list[Sample]:
    rows = db.execute(
        "SELECT taken_at, active_sessions, forwarded_bytes FROM samples "
        "WHERE taken_at >= ? ORDER BY taken_at",
        (since,),
    )
    return [Sample(*row) for row in rows.fetchall()]


def session_starts(db: sqlite3.Connection, since: float) -> list[tuple[float, str]]:
    """Return the start time and method of every session started since."""
    rows = db.execute(
        "SELECT started_at, method FROM sessions WHERE started_at >= ? "
        "ORDER BY started_at",
        (since,),
    )
    return [(started_at, method) for started_at, method in rows.fetchall()]
