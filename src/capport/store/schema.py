"""The SQLite schema and its migrations, versioned by PRAGMA user_version.

Each migration runs in the same BEGIN IMMEDIATE transaction as the version
bump, so a crash leaves the file at the old version or the new one. Two
processes opening one file at once (the daemon and the command line) cannot
both apply a step, because the second reads the version after the first
commits.
"""

from __future__ import annotations

import sqlite3

# Version 1: sessions and the signing key.
_VERSION_1 = (
    """CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id         INTEGER PRIMARY KEY,
        mac        TEXT NOT NULL,
        ip         TEXT NOT NULL,
        method     TEXT NOT NULL,
        started_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        ended_at   REAL,
        end_reason TEXT
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS sessions_one_active_per_device
        ON sessions (mac, ip) WHERE ended_at IS NULL""",
    """CREATE INDEX IF NOT EXISTS sessions_active_by_expiry
        ON sessions (expires_at) WHERE ended_at IS NULL""",
)

# Version 2: local users, vouchers, and who each session was granted to.
_VERSION_2 = (
    "ALTER TABLE sessions ADD COLUMN subject TEXT",
    "ALTER TABLE sessions ADD COLUMN contact_name TEXT",
    "ALTER TABLE sessions ADD COLUMN contact_email TEXT",
    """CREATE INDEX sessions_active_by_subject
        ON sessions (method, subject) WHERE ended_at IS NULL""",
    """CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        max_devices   INTEGER,
        created_at    REAL NOT NULL
    )""",
    """CREATE TABLE vouchers (
        id            INTEGER PRIMARY KEY,
        digest        TEXT NOT NULL UNIQUE,
        duration      REAL NOT NULL,
        quota_bytes   INTEGER,
        max_devices   INTEGER,
        max_uses      INTEGER,
        uses          INTEGER NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL,
        first_used_at REAL,
        revoked_at    REAL
    )""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_VERSION_1, _VERSION_2)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    """Return the schema version of the open database file."""
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(db: sqlite3.Connection, path: str) -> int:
    """Bring the database to SCHEMA_VERSION; return the version it had before.

    db must be in autocommit mode (isolation_level=None). Raises
    sqlite3.DatabaseError when the file is newer than this capport.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(db)
        if before > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"{path} has schema version {before}, newer than this capport "
                f"supports ({SCHEMA_VERSION}); upgrade capport"
            )
        for statements in MIGRATIONS[before:]:
            for statement in statements:
                db.execute(statement)
        # PRAGMA user_version writes the file header inside the transaction.
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return before
