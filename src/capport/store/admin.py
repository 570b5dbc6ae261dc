"""SQLite tables for API tokens and the per-minute history samples.

Like the other tables beside the versioned schema, they are created on open
if missing, so an older capport that does not know them leaves them alone.
Every function runs on the store's own thread with its connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from capport.admin.records import ApiToken, Sample
from capport.errors import RecordExists, RecordNotFound
from capport.store.accounts import is_duplicate

# AUTOINCREMENT keeps a revoked token's id from being given to a new token,
# so a stale id in a script cannot revoke the wrong one.
_TOKENS_TABLE = """CREATE TABLE IF NOT EXISTS {table} (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL UNIQUE,
        digest       TEXT NOT NULL UNIQUE,
        created_at   REAL NOT NULL,
        last_used_at REAL
    )"""

SCHEMA = (
    _TOKENS_TABLE.format(table="api_tokens"),
    """CREATE TABLE IF NOT EXISTS samples (
        taken_at        REAL PRIMARY KEY,
        active_sessions INTEGER NOT NULL,
        forwarded_bytes INTEGER NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (started_at)""",
)

_TOKEN_COLUMNS = "name, digest, created_at, last_used_at"
_SELECT_TOKENS = f"SELECT {_TOKEN_COLUMNS}, id FROM api_tokens"


def create(db: sqlite3.Connection) -> None:
    _add_token_ids(db)
    for statement in SCHEMA:
        db.execute(statement)


def _add_token_ids(db: sqlite3.Connection) -> None:
    """Rebuild an api_tokens table made before tokens had ids.

    SQLite cannot add an AUTOINCREMENT key to a table, so the rows move to
    a new one, numbered by creation time. db is in autocommit mode, and the
    check runs inside BEGIN IMMEDIATE so that two processes opening the
    file at once do not both rebuild it.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(api_tokens)")}
        if columns and "id" not in columns:
            db.execute(_TOKENS_TABLE.format(table="api_tokens_with_ids"))
            db.execute(
                f"INSERT INTO api_tokens_with_ids ({_TOKEN_COLUMNS}) "
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, name"
            )
            db.execute("DROP TABLE api_tokens")
            db.execute("ALTER TABLE api_tokens_with_ids RENAME TO api_tokens")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# API tokens


def add_token(db: sqlite3.Connection, token: ApiToken) -> ApiToken:
    """Insert token and return it with the id the table gave it."""
    try:
        cursor = db.execute(
            f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?)",
            (token.name, token.digest, token.created_at, token.last_used_at),
        )
    except sqlite3.IntegrityError as error:
        if not is_duplicate(error):
            raise
        raise RecordExists(
            f"API token {token.name!r} already exists; revoke it first or "
            "choose another name"
        ) from None
    assert cursor.lastrowid is not None
    return replace(token, id=cursor.lastrowid)


def list_tokens(db: sqlite3.Connection) -> list[ApiToken]:
    rows = db.execute(f"{_SELECT_TOKENS} ORDER BY name")
    return [ApiToken(*row) for row in rows.fetchall()]


def find_token(db: sqlite3.Connection, digest: str) -> ApiToken | None:
    row = db.execute(f"{_SELECT_TOKENS} WHERE digest=?", (digest,)).fetchone()
    return None if row is None else ApiToken(*row)


def touch_token(db: sqlite3.Connection, name: str, now: float) -> None:
    db.execute("UPDATE api_tokens SET last_used_at=? WHERE name=?", (now, name))


def remove_token(db: sqlite3.Connection, name: str) -> ApiToken:
    """Delete the token called name and return it."""
    row = db.execute(f"{_SELECT_TOKENS} WHERE name=?", (name,)).fetchone()
    if row is None:
        raise RecordNotFound(
            f"API token {name!r} not found; `capport tokens list` shows the tokens"
        )
    db.execute("DELETE FROM api_tokens WHERE name=?", (name,))
    return ApiToken(*row)


def remove_token_by_id(db: sqlite3.Connection, token_id: int) -> ApiToken:
    """Delete the token with token_id and return it."""
    row = db.execute(f"{_SELECT_TOKENS} WHERE id=?", (token_id,)).fetchone()
    if row is None:
        raise RecordNotFound(
            f"API token {token_id} not found; `capport tokens list` shows the "
            "tokens with their ids"
        )
    db.execute("DELETE FROM api_tokens WHERE id=?", (token_id,))
    return ApiToken(*row)


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
