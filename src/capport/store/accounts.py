"""SQL for local users and vouchers, run on the SQLite store's thread.

Each function takes the open connection. The caller owns transactions, so
redeeming a voucher and starting its session commit together.
"""

from __future__ import annotations

import sqlite3

from capport.auth.records import NewVoucher, User, Voucher
from capport.errors import RecordExists, RecordNotFound, VoucherUnavailable

_USER_COLUMNS = "name, password_hash, created_at, max_devices"
_VOUCHER_COLUMNS = (
    "id, digest, duration, created_at, quota_bytes, max_devices, max_uses, "
    "uses, first_used_at, revoked_at"
)


def is_duplicate(error: sqlite3.IntegrityError) -> bool:
    """Tell whether error is a UNIQUE or PRIMARY KEY violation.

    Other constraint failures (CHECK, NOT NULL, a trigger) mean a bad value,
    not an existing record, and are reported by the store as they are.
    """
    return error.sqlite_errorname in _DUPLICATE_ERRORS


_DUPLICATE_ERRORS = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
)


# Users


def add_user(db: sqlite3.Connection, user: User) -> None:
    try:
        db.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?)",
            (user.name, user.password_hash, user.created_at, user.max_devices),
        )
    except sqlite3.IntegrityError as error:
        if not is_duplicate(error):
            raise
        raise RecordExists(
            f"user {user.name!r} already exists; use `capport users passwd` "
            "to change the password"
        ) from None


def find_user(db: sqlite3.Connection, name: str) -> User | None:
    row = db.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE name=?", (name,)
    ).fetchone()
    return None if row is None else User(*row)


def list_users(db: sqlite3.Connection) -> list[User]:
    rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
    return [User(*row) for row in rows]


def set_password(db: sqlite3.Connection, name: str, password_hash: str) -> None:
    cursor = db.execute(
        "UPDATE users SET password_hash=? WHERE name=?", (password_hash, name)
    )
    if cursor.rowcount == 0:
        raise _no_user(name)


def remove_user(db: sqlite3.Connection, name: str) -> None:
    if db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount == 0:
        raise _no_user(name)


def _no_user(name: str) -> RecordNotFound:
    return RecordNotFound(
        f"user {name!r} not found; `capport users list` shows the users"
    )


# Vouchers


def add_vouchers(
    db: sqlite3.Connection, vouchers: list[NewVoucher], now: float
) -> list[Voucher]:
    stored = []
    for new in vouchers:
        try:
            cursor = db.execute(
                "INSERT INTO vouchers (digest, duration, quota_bytes, max_devices, "
                "max_uses, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    new.digest,
                    new.duration,
                    new.quota_bytes,
                    new.max_devices,
                    new.max_uses,
                    now,
                ),
            )
        except sqlite3.IntegrityError as error:
            if not is_duplicate(error):
                raise
            raise RecordExists("a voucher with the same code exists") from None
        assert cursor.lastrowid is not None
        stored.append(
            Voucher(
                cursor.lastrowid,
                new.digest,
                new.duration,
                now,
                new.quota_bytes,
                new.max_devices,
                new.max_uses,
            )
        )
    return stored


def find_voucher(db: sqlite3.Connection, digest: str) -> Voucher | None:
    row = db.execute(
        f"SELECT {_VOUCHER_COLUMNS} FROM vouchers WHERE digest=?", (digest,)
    ).fetchone()
    return None if row is None else Voucher(*row)


def list_vouchers(db: sqlite3.Connection) -> list[Voucher]:
    rows = db.execute(f"SELECT {_VOUCHER_COLUMNS} FROM vouchers ORDER BY id")
    return [Voucher(*row) for row in rows.fetchall()]


def revoke_voucher(db: sqlite3.Connection, voucher_id: int, now: float) -> None:
    cursor = db.execute(
        "UPDATE vouchers SET revoked_at=COALESCE(revoked_at, ?) WHERE id=?",
        (now, voucher_id),
    )
    if cursor.rowcount == 0:
        raise RecordNotFound(
            f"voucher {voucher_id} not found; `capport vouchers list` shows "
            "the vouchers"
        )


def consume_voucher(db: sqlite3.Connection, voucher_id: int, now: float) -> float:
    """Count one use of the voucher and return when its time runs out.

    The caller must hold a write transaction (BEGIN IMMEDIATE), which
    SQLite grants to one connection at a time, so two devices redeeming
    the last use of a voucher cannot both pass the check.
    """
    row = db.execute(
        f"SELECT {_VOUCHER_COLUMNS} FROM vouchers WHERE id=?", (voucher_id,)
    ).fetchone()
    if row is None:
        raise RecordNotFound(f"voucher {voucher_id} not found")
    voucher = Voucher(*row)
    reason = voucher.unavailable_reason(now)
    if reason is not None:
        raise VoucherUnavailable(f"voucher {voucher_id} is {reason}")
    first_used_at = now if voucher.first_used_at is None else voucher.first_used_at
    db.execute(
        "UPDATE vouchers SET uses=uses+1, first_used_at=? WHERE id=?",
        (first_used_at, voucher_id),
    )
    return first_used_at + voucher.duration
