"""The SQLite session store."""

import asyncio
from pathlib import Path

import pytest

from capport.auth.entitlement import Entitlement, Method
from capport.models import Device, EndReason, Session
from capport.store.sqlite import SQLiteStore

DEVICE = Device.parse("02:00:00:00:00:11", "192.0.2.11")


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def _start(
    store: SQLiteStore, device: Device, duration: float, now: float
) -> Session:
    entitlement = Entitlement(Method.CLICK_THROUGH, duration)
    started = await store.start_session(device, entitlement, now)
    return started.session


async def _opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


def test_session_survives_reopen(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        started = await _start(store, DEVICE, 600, 1000.0)
        await store.close()
        reopened = await _opened(tmp_path / "s.db")
        active = await reopened.active_sessions()
        await reopened.close()
        assert [session.id for session in active] == [started.id]
        assert active[0].device == DEVICE
        assert active[0].expires_at == 1600.0

    run(scenario())


def test_new_session_replaces_active_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        first = await _start(store, DEVICE, 600, 1000.0)
        second = await _start(store, DEVICE, 600, 1100.0)
        active = await store.active_sessions()
        ended = await store.end_session(first.id, EndReason.REVOKED, now=1200.0)
        await store.close()
        assert [session.id for session in active] == [second.id]
        assert ended is None

    run(scenario())


def test_end_session_records_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        session = await _start(store, DEVICE, 600, 1000.0)
        ended = await store.end_session(session.id, EndReason.LOGOUT, now=1050.0)
        active = await store.active_sessions()
        await store.close()
        assert ended is not None
        assert ended.end_reason == EndReason.LOGOUT
        assert ended.ended_at == 1050.0
        assert active == []

    run(scenario())


def test_expire_due_ends_only_due(tmp_path: Path) -> None:
    other = Device.parse("02:00:00:00:00:12", "192.0.2.12")

    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        short = await _start(store, DEVICE, 60, 1000.0)
        await _start(store, other, 600, 1000.0)
        expired = await store.expire_due(now=1061.0)
        active = await store.active_sessions()
        await store.close()
        assert [session.id for session in expired] == [short.id]
        assert expired[0].end_reason == EndReason.EXPIRED
        assert [session.device for session in active] == [other]

    run(scenario())


def test_secret_is_stable(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        store = await _opened(tmp_path / "s.db")
        first = await store.secret()
        await store.close()
        store = await _opened(tmp_path / "s.db")
        second = await store.secret()
        await store.close()
        return first, second

    first, second = run(scenario())
    assert len(first) == 32
    assert first == second


def test_store_uses_wal(tmp_path: Path) -> None:
    import sqlite3

    run(_opened(tmp_path / "s.db"))
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode")
    assert mode.fetchone()[0] == "wal"


def test_newer_schema_rejected(tmp_path: Path) -> None:
    import sqlite3

    from capport.errors import StoreError

    sqlite3.connect(tmp_path / "s.db").execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer than this capport"):
        run(_opened(tmp_path / "s.db"))


def test_store_file_is_private(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await _opened(tmp_path / "s.db")
        await _start(store, DEVICE, 600, 1000.0)
        await store.close()

    run(scenario())
    for name in ("s.db", "s.db-wal"):
        path = tmp_path / name
        if path.exists():
            assert path.stat().st_mode & 0o077 == 0, name
