"""Users, vouchers, device limits and the schema migration of the SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from capport.auth.entitlement import Entitlement, Method
from capport.auth.records import Contact, NewVoucher, User
from capport.errors import (
    DeviceLimitReached,
    RecordExists,
    RecordNotFound,
    StoreError,
    VoucherUnavailable,
)
from capport.models import Device, EndReason
from capport.store.schema import SCHEMA_VERSION
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:0a", "192.0.2.10")
B = Device.parse("02:00:00:00:00:0b", "192.0.2.11")
C = Device.parse("02:00:00:00:00:0c", "192.0.2.12")


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def _opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


def _voucher_entitlement(voucher_id: int, duration: float = 3600.0) -> Entitlement:
    return Entitlement(Method.VOUCHER, duration, subject=str(voucher_id))


async def _one_voucher(
    store: SQLiteStore, max_devices: int | None = None, max_uses: int | None = None
) -> int:
    """Store a voucher of 600 seconds and return its id."""
    new = NewVoucher("0" * 64, 600.0, max_devices=max_devices, max_uses=max_uses)
    (voucher,) = await store.add_vouchers([new], now=1000.0)
    return voucher.id


# Users


def test_user_round_trip(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await store.add_user(User("alice", "$argon2id$x", 1000.0, 2))
        found = await store.user("alice")
        missing = await store.user("bob")
        await store.close()
        assert found == User("alice", "$argon2id$x", 1000.0, 2)
        assert missing is None

    run(scenario())


def test_duplicate_user_is_rejected(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await store.add_user(User("alice", "h1", 1000.0))
        try:
            with pytest.raises(RecordExists, match="alice"):
                await store.add_user(User("alice", "h2", 1001.0))
        finally:
            await store.close()

    run(scenario())


def test_set_password_and_remove(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await store.add_user(User("alice", "old", 1000.0))
        await store.set_password("alice", "new")
        changed = await store.user("alice")
        await store.remove_user("alice")
        remaining = await store.users()
        with pytest.raises(RecordNotFound):
            await store.remove_user("alice")
        with pytest.raises(RecordNotFound):
            await store.set_password("alice", "again")
        await store.close()
        assert changed is not None
        assert changed.password_hash == "new"
        assert remaining == []

    run(scenario())


# Vouchers


def test_duplicate_voucher_code_is_rejected(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await _one_voucher(store)
        try:
            with pytest.raises(RecordExists, match="same code"):
                await _one_voucher(store)
        finally:
            await store.close()

    run(scenario())


def test_voucher_trigger_failure_is_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def scenario() -> None:
        store = await _opened(path)
        await store.close()
        db = sqlite3.connect(path)
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON vouchers "
            "BEGIN SELECT RAISE(ABORT, 'vouchers are frozen'); END"
        )
        db.commit()
        db.close()
        store = await _opened(path)
        try:
            with pytest.raises(StoreError, match="vouchers are frozen"):
                await _one_voucher(store)
        finally:
            await store.close()

    run(scenario())


def test_voucher_session_starts_voucher_clock(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _one_voucher(store)
        first = await store.start_session(A, _voucher_entitlement(voucher_id), 2000.0)
        # A later device on the same voucher gets only what is left of it.
        second = await store.start_session(B, _voucher_entitlement(voucher_id), 2500.0)
        (voucher,) = await store.vouchers()
        await store.close()
        assert voucher.first_used_at == 2000.0
        assert voucher.uses == 2
        assert first.session.expires_at == 2600.0
        assert second.session.expires_at == 2600.0
        assert first.session.subject == str(voucher_id)

    run(scenario())


def test_expired_voucher_is_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _one_voucher(store)
        await store.start_session(A, _voucher_entitlement(voucher_id), 2000.0)
        try:
            with pytest.raises(VoucherUnavailable, match="expired"):
                await store.start_session(B, _voucher_entitlement(voucher_id), 2600.0)
        finally:
            await store.close()

    run(scenario())


def test_used_up_voucher_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _one_voucher(store, max_uses=1)
        await store.start_session(A, _voucher_entitlement(voucher_id), 2000.0)
        with pytest.raises(VoucherUnavailable, match="used up"):
            await store.start_session(B, _voucher_entitlement(voucher_id), 2001.0)
        active = await store.active_sessions()
        (voucher,) = await store.vouchers()
        await store.close()
        assert [session.device for session in active] == [A]
        assert voucher.uses == 1

    run(scenario())


def test_revoked_voucher_is_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _one_voucher(store)
        await store.revoke_voucher(voucher_id, 1500.0)
        try:
            with pytest.raises(VoucherUnavailable, match="revoked"):
                await store.start_session(A, _voucher_entitlement(voucher_id), 2000.0)
            with pytest.raises(RecordNotFound):
                await store.revoke_voucher(voucher_id + 1, 1500.0)
        finally:
            await store.close()

    run(scenario())


def _redeem_in_thread(
    path: Path,
    device: Device,
    voucher_id: int,
    barrier: threading.Barrier,
    outcomes: dict[Device, str],
) -> None:
    """Redeem the voucher on a connection and event loop of this thread's own."""

    async def redeem() -> str:
        store = await _opened(path)
        try:
            barrier.wait(timeout=10)
            await store.start_session(device, _voucher_entitlement(voucher_id), 2000.0)
            return "won"
        except VoucherUnavailable:
            return "lost"
        finally:
            await store.close()

    outcomes[device] = asyncio.run(redeem())


@pytest.mark.parametrize("attempt", range(10))
def test_single_use_voucher_race_has_one_winner(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "s.db"

    async def setup() -> int:
        store = await _opened(path)
        voucher_id = await _one_voucher(store, max_uses=1)
        await store.close()
        return voucher_id

    voucher_id = run(setup())
    barrier = threading.Barrier(2)
    outcomes: dict[Device, str] = {}
    threads = [
        threading.Thread(
            target=_redeem_in_thread, args=(path, device, voucher_id, barrier, outcomes)
        )
        for device in (A, B)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["lost", "won"]
    with sqlite3.connect(path) as db:
        uses = db.execute("SELECT uses FROM vouchers").fetchone()[0]
        active = db.execute("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
        assert active.fetchone()[0] == 1
    assert uses == 1


# Device limits


def _user_entitlement(max_devices: int) -> Entitlement:
    return Entitlement(Method.USER, 600.0, subject="alice", max_devices=max_devices)


def test_device_limit_rejects_new_device(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await store.start_session(A, _user_entitlement(2), 1000.0)
        await store.start_session(B, _user_entitlement(2), 1001.0)
        with pytest.raises(DeviceLimitReached) as caught:
            await store.start_session(C, _user_entitlement(2), 1002.0)
        active = await store.active_sessions()
        await store.close()
        assert caught.value.limit == 2
        assert [session.device for session in active] == [A, B]

    run(scenario())


def test_device_limit_ends_oldest_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        first = await store.start_session(A, _user_entitlement(2), 1000.0)
        await store.start_session(B, _user_entitlement(2), 1001.0)
        started = await store.start_session(
            C, _user_entitlement(2), 1002.0, on_device_limit="end-oldest"
        )
        active = await store.active_sessions()
        await store.close()
        assert [s.id for s in started.displaced] == [first.session.id]
        assert started.displaced[0].end_reason == EndReason.DEVICE_LIMIT
        assert [session.device for session in active] == [B, C]

    run(scenario())


def test_same_device_does_not_count_twice(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await store.start_session(A, _user_entitlement(1), 1000.0)
        again = await store.start_session(A, _user_entitlement(1), 1001.0)
        active = await store.active_sessions()
        await store.close()
        assert again.displaced == []
        assert [session.id for session in active] == [again.session.id]

    run(scenario())


def test_rejected_voucher_device_keeps_use(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _one_voucher(store, max_devices=1)
        entitlement = Entitlement(
            Method.VOUCHER, 600.0, subject=str(voucher_id), max_devices=1
        )
        await store.start_session(A, entitlement, 2000.0)
        with pytest.raises(DeviceLimitReached):
            await store.start_session(B, entitlement, 2001.0)
        (voucher,) = await store.vouchers()
        await store.close()
        assert voucher.uses == 1

    run(scenario())


# Contact details and the migration


def test_contact_is_stored_with_session(tmp_path: Path) -> None:
    async def scenario() -> int:
        store = await _opened(tmp_path / "s.db")
        entitlement = Entitlement(Method.CLICK_THROUGH, 600.0)
        contact = Contact("Ada Lovelace", "ada@example.com")
        started = await store.start_session(A, entitlement, 1000.0, contact=contact)
        await store.close()
        return started.session.id

    session_id = run(scenario())
    with sqlite3.connect(tmp_path / "s.db") as db:
        row = db.execute(
            "SELECT contact_name, contact_email FROM sessions WHERE id=?",
            (session_id,),
        ).fetchone()
    assert row == ("Ada Lovelace", "ada@example.com")


VERSION_1_FILE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, mac TEXT NOT NULL, ip TEXT NOT NULL,
    method TEXT NOT NULL, started_at REAL NOT NULL, expires_at REAL NOT NULL,
    ended_at REAL, end_reason TEXT
);
CREATE UNIQUE INDEX sessions_one_active_per_device
    ON sessions (mac, ip) WHERE ended_at IS NULL;
CREATE INDEX sessions_active_by_expiry
    ON sessions (expires_at) WHERE ended_at IS NULL;
INSERT INTO sessions (mac, ip, method, started_at, expires_at)
    VALUES ('02:00:00:00:00:0a', '192.0.2.10', 'click-through', 1000, 4600);
PRAGMA user_version = 1;
"""


def test_migration_keeps_version_1_sessions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_1_FILE)

    async def scenario() -> None:
        store = await _opened(path)
        active = await store.active_sessions()
        await store.add_user(User("alice", "h", 1000.0))
        await store.close()
        assert [session.device for session in active] == [A]
        assert active[0].expires_at == 4600.0
        assert active[0].subject is None

    run(scenario())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    async def scenario() -> None:
        with pytest.raises(StoreError, match="upgrade capport"):
            await _opened(path)

    run(scenario())
