"""SQLite session store: one file, WAL journal, one writer thread."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from capport import accounting
from capport.accounting import SessionTerms, UsageRecord
from capport.acct.records import AccountingRecord
from capport.admin.records import ApiToken, Sample
from capport.auth.entitlement import Entitlement, Method
from capport.auth.records import Contact, NewVoucher, User, Voucher
from capport.errors import (
    CapportError,
    DeviceLimitReached,
    RecordNotFound,
    StoreError,
    VoucherUnavailable,
)
from capport.models import Device, EndReason, Session
from capport.store import accounts, acct, admin, policy
from capport.store.base import (
    BootClock,
    DeviceLimitPolicy,
    SessionRequest,
    SessionStart,
)
from capport.store.schema import SCHEMA_VERSION, migrate

log = logging.getLogger("capport.store")

T = TypeVar("T")

# The errors that fail one request of start_sessions and not the whole batch.
_REQUEST_ERRORS = (DeviceLimitReached, RecordNotFound, VoucherUnavailable)

_COLUMNS = "id, mac, ip, method, started_at, expires_at, ended_at, end_reason, subject"


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
        self,
        device: Device,
        entitlement: Entitlement,
        now: float,
        *,
        contact: Contact | None = None,
        on_device_limit: DeviceLimitPolicy = "reject",
    ) -> SessionStart:
        return await self._run(
            lambda: self._start(device, entitlement, now, contact, on_device_limit)
        )

    async def start_sessions(
        self,
        requests: list[SessionRequest],
        now: float,
        boot: BootClock,
        *,
        on_device_limit: DeviceLimitPolicy = "reject",
    ) -> list[SessionStart | CapportError]:
        return await self._run(
            lambda: self._start_many(requests, now, boot, on_device_limit)
        )

    async def end_session(
        self, session_id: int, reason: str, now: float
    ) -> Session | None:
        return await self._run(lambda: self._end(session_id, reason, now))

    async def active_sessions(self) -> list[Session]:
        return await self._run(self._active)

    async def expire_due(self, now: float) -> list[Session]:
        return await self._run(lambda: self._expire(now))

    # Users and vouchers

    async def add_user(self, user: User) -> None:
        await self._run(lambda: self._write(accounts.add_user, user))

    async def user(self, name: str) -> User | None:
        return await self._run(lambda: accounts.find_user(self._conn, name))

    async def users(self) -> list[User]:
        return await self._run(lambda: accounts.list_users(self._conn))

    async def set_password(self, name: str, password_hash: str) -> None:
        await self._run(lambda: self._write(accounts.set_password, name, password_hash))

    async def remove_user(self, name: str) -> None:
        await self._run(lambda: self._write(accounts.remove_user, name))

    async def add_vouchers(
        self, vouchers: list[NewVoucher], now: float
    ) -> list[Voucher]:
        return await self._run(
            lambda: self._write(accounts.add_vouchers, vouchers, now)
        )

    async def voucher(self, digest: str) -> Voucher | None:
        return await self._run(lambda: accounts.find_voucher(self._conn, digest))

    async def vouchers(self) -> list[Voucher]:
        return await self._run(lambda: accounts.list_vouchers(self._conn))

    async def revoke_voucher(self, voucher_id: int, now: float) -> None:
        await self._run(lambda: self._write(accounts.revoke_voucher, voucher_id, now))

    # Session terms, usage and MAC list overrides

    async def save_terms(self, session_id: int, terms: SessionTerms) -> None:
        await self._run(lambda: policy.save_terms(self._conn, session_id, terms))

    async def session_terms(
        self, session_ids: list[int]
    ) -> dict[int, tuple[SessionTerms, UsageRecord]]:
        return await self._run(lambda: policy.load_terms(self._conn, session_ids))

    async def record_usage(self, records: list[UsageRecord]) -> None:
        if records:
            await self._run(lambda: self._in_transaction(policy.record_usage, records))

    async def set_expiry(self, expiries: list[tuple[int, float]]) -> None:
        if expiries:
            await self._run(lambda: self._in_transaction(policy.set_expiry, expiries))

    def _in_transaction(
        self, work: Callable[[sqlite3.Connection, Any], None], rows: Any
    ) -> None:
        # The connection is in autocommit mode, so without one transaction
        # every row of an executemany would be its own synchronous commit.
        with _transaction(self._conn):
            work(self._conn, rows)

    async def mac_overrides(self) -> dict[str, str]:
        return await self._run(lambda: policy.mac_overrides(self._conn))

    async def set_mac_override(self, mac: str, policy_name: str, now: float) -> None:
        await self._run(
            lambda: policy.set_mac_override(self._conn, mac, policy_name, now)
        )

    # Admin API tokens and history

    async def add_token(self, token: ApiToken) -> ApiToken:
        return await self._run(lambda: self._write(admin.add_token, token))

    async def tokens(self) -> list[ApiToken]:
        return await self._run(lambda: admin.list_tokens(self._conn))

    async def token(self, digest: str) -> ApiToken | None:
        return await self._run(lambda: admin.find_token(self._conn, digest))

    async def touch_token(self, name: str, now: float) -> None:
        await self._run(lambda: self._write(admin.touch_token, name, now))

    async def remove_token(self, name: str) -> ApiToken:
        return await self._run(lambda: self._write(admin.remove_token, name))

    async def remove_token_by_id(self, token_id: int) -> ApiToken:
        return await self._run(lambda: self._write(admin.remove_token_by_id, token_id))

    async def add_sample(self, sample: Sample, keep_after: float) -> None:
        await self._run(lambda: self._write(admin.add_sample, sample, keep_after))

    async def samples(self, since: float) -> list[Sample]:
        return await self._run(lambda: admin.list_samples(self._conn, since))

    async def session_starts(self, since: float) -> list[tuple[float, str]]:
        return await self._run(lambda: admin.session_starts(self._conn, since))

    # Accounting records

    async def add_accounting_record(self, record: AccountingRecord) -> None:
        await self._run(lambda: self._write(acct.add_record, record))

    async def accounting_records(
        self, since: float, until: float
    ) -> list[AccountingRecord]:
        return await self._run(lambda: acct.find_records(self._conn, since, until))

    async def prune_accounting(self, before: float) -> int:
        return await self._run(lambda: self._write(acct.prune, before))

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work)
        except sqlite3.Error as error:
            raise StoreError(f"session store {self._path} failed: {error}") from error

    # The methods below run on the store thread only.

    def _open(self) -> None:
        if self._path != ":memory:":
            _create_private(Path(self._path))
        db = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        try:
            before = migrate(db, self._path)
            policy.create(db)
            admin.create(db)
            acct.create(db)
        except BaseException:
            db.close()
            raise
        if 0 < before < SCHEMA_VERSION:
            log.info(
                "Migrated the store %s from schema version %d to %d.",
                self._path,
                before,
                SCHEMA_VERSION,
            )
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

    def _write(self, work: Callable[..., T], *args: object) -> T:
        with _transaction(self._conn):
            return work(self._conn, *args)

    def _start(
        self,
        device: Device,
        entitlement: Entitlement,
        now: float,
        contact: Contact | None,
        on_device_limit: DeviceLimitPolicy,
    ) -> SessionStart:
        with _transaction(self._conn):
            return self._insert_session(
                device, entitlement, now, contact, on_device_limit
            )

    def _start_many(
        self,
        requests: list[SessionRequest],
        now: float,
        boot: BootClock,
        on_device_limit: DeviceLimitPolicy,
    ) -> list[SessionStart | CapportError]:
        db = self._conn
        results: list[SessionStart | CapportError] = []
        with _transaction(db):
            for request in requests:
                # A savepoint undoes one request's changes, such as a
                # voucher use counted before its device limit was hit.
                db.execute("SAVEPOINT start_request")
                try:
                    started = self._insert_session(
                        request.device,
                        request.entitlement,
                        now,
                        request.contact,
                        on_device_limit,
                    )
                    terms = accounting.with_boot_deadline(
                        request.terms,
                        boot.boot_id,
                        boot.now,
                        started.session.remaining(now),
                    )
                    policy.save_terms(db, started.session.id, terms)
                except _REQUEST_ERRORS as error:
                    db.execute("ROLLBACK TO start_request")
                    results.append(error)
                else:
                    results.append(replace(started, terms=terms))
                db.execute("RELEASE start_request")
        return results

    def _insert_session(
        self,
        device: Device,
        entitlement: Entitlement,
        now: float,
        contact: Contact | None,
        on_device_limit: DeviceLimitPolicy,
    ) -> SessionStart:
        """Insert one session. The caller must have begun a write transaction."""
        db = self._conn
        db.execute(
            "UPDATE sessions SET ended_at=?, end_reason=? "
            "WHERE mac=? AND ip=? AND ended_at IS NULL",
            (now, EndReason.REPLACED, device.mac, str(device.ip)),
        )
        expires_at = now + entitlement.duration
        if entitlement.method == Method.VOUCHER:
            # A voucher session never outlasts the voucher's own time.
            voucher_id = int(entitlement.subject or "")
            ends_at = accounts.consume_voucher(db, voucher_id, now)
            expires_at = min(expires_at, ends_at)
        displaced = self._make_room(entitlement, now, on_device_limit)
        cursor = db.execute(
            "INSERT INTO sessions (mac, ip, method, started_at, expires_at, "
            "subject, contact_name, contact_email) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                device.mac,
                str(device.ip),
                entitlement.method,
                now,
                expires_at,
                entitlement.subject,
                contact.name if contact else None,
                contact.email if contact else None,
            ),
        )
        session_id = cursor.lastrowid
        assert session_id is not None
        session = Session(
            session_id,
            device,
            entitlement.method,
            now,
            expires_at,
            subject=entitlement.subject,
        )
        return SessionStart(session, displaced)

    def _make_room(
        self, entitlement: Entitlement, now: float, policy: DeviceLimitPolicy
    ) -> list[Session]:
        """Apply the subject's device limit before one more session starts."""
        limit = entitlement.max_devices
        if limit is None or entitlement.subject is None:
            return []
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE method=? AND subject=? "
            "AND ended_at IS NULL ORDER BY started_at, id",
            (entitlement.method, entitlement.subject),
        ).fetchall()
        excess = len(rows) - limit + 1
        if excess <= 0:
            return []
        if policy == "reject":
            raise DeviceLimitReached(
                f"{entitlement.method} {entitlement.subject!r} is already in use "
                f"on {len(rows)} device(s), its limit is {limit}",
                limit,
            )
        oldest = rows[:excess]
        self._conn.executemany(
            "UPDATE sessions SET ended_at=?, end_reason=? WHERE id=?",
            [(now, EndReason.DEVICE_LIMIT, row[0]) for row in oldest],
        )
        return [
            _session(row[:6] + (now, EndReason.DEVICE_LIMIT, row[8])) for row in oldest
        ]

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
        return _session(row[:6] + (now, reason, row[8]))

    def _active(self) -> list[Session]:
        # Iterating the cursor builds each Session from its row as it comes,
        # instead of holding every row of 100,000 sessions at once.
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE ended_at IS NULL ORDER BY id"
        )
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
        return [_session(row[:6] + (now, EndReason.EXPIRED, row[8])) for row in rows]


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _session(row: tuple) -> Session:
    session_id, mac, ip, method, started, expires, ended, reason, subject = row
    return Session(
        session_id,
        Device.parse(mac, ip),
        # sqlite3 returns a new string for every row, and a handful of
        # methods would otherwise take 6 MB for 100,000 sessions.
        sys.intern(method),
        started,
        expires,
        ended,
        reason,
        subject,
    )


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only.

    It contains the MAC and IP history and password and voucher hashes. SQLite
    gives its -wal and -shm files the database file's permissions.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)
