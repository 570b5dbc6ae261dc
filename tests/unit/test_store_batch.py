"""Starting a batch of sessions with their terms in one SQLite transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from capport.accounting import SessionTerms
from capport.auth.entitlement import Entitlement, Method
from capport.auth.records import Contact, NewVoucher
from capport.enforce.base import Limits
from capport.errors import DeviceLimitReached, StoreError, VoucherUnavailable
from capport.models import Device, EndReason
from capport.store.base import BootClock, SessionRequest, SessionStart
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:0a", "192.0.2.10")
B = Device.parse("02:00:00:00:00:0b", "192.0.2.11")
C = Device.parse("02:00:00:00:00:0c", "192.0.2.12")
CLICK = Entitlement(Method.CLICK_THROUGH, 600.0)
BOOT = BootClock("boot-1", 50.0)
TERMS = SessionTerms(Limits(quota_down=1000), idle_timeout=60.0)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def _opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    return store


async def _voucher(store: SQLiteStore, max_uses: int | None = None) -> int:
    new = NewVoucher("0" * 64, 300.0, max_uses=max_uses)
    (voucher,) = await store.add_vouchers([new], now=1000.0)
    return voucher.id


def _voucher_entitlement(
    voucher_id: int, max_devices: int | None = None
) -> Entitlement:
    return Entitlement(
        Method.VOUCHER, 600.0, subject=str(voucher_id), max_devices=max_devices
    )


def _started(result: SessionStart | Exception) -> SessionStart:
    assert isinstance(result, SessionStart), result
    return result


def test_batch_commits_every_session(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[SessionStart | Exception], list[int]]:
        store = await _opened(tmp_path / "s.db")
        requests = [SessionRequest(device, CLICK) for device in (A, B, C)]
        results = await store.start_sessions(requests, 1000.0, BOOT)
        active = [session.id for session in await store.active_sessions()]
        await store.close()
        return results, active

    results, active = run(scenario())

    sessions = [_started(result).session for result in results]
    assert [session.device for session in sessions] == [A, B, C]
    assert active == [session.id for session in sessions]


def test_batch_stores_terms_with_boot_deadline(tmp_path: Path) -> None:
    async def scenario() -> tuple[SessionStart, dict[int, SessionTerms]]:
        store = await _opened(tmp_path / "s.db")
        (result,) = await store.start_sessions(
            [SessionRequest(A, CLICK, TERMS)], 1000.0, BOOT
        )
        started = _started(result)
        stored = await store.session_terms([started.session.id])
        await store.close()
        return started, {key: value[0] for key, value in stored.items()}

    started, stored = run(scenario())

    expected = SessionTerms(TERMS.limits, 60.0, "boot-1", 650.0)
    assert started.terms == expected
    assert stored == {started.session.id: expected}


def test_batch_deadline_follows_voucher_end(tmp_path: Path) -> None:
    async def scenario() -> SessionStart:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _voucher(store)
        request = SessionRequest(A, _voucher_entitlement(voucher_id), TERMS)
        (result,) = await store.start_sessions([request], 1000.0, BOOT)
        await store.close()
        return _started(result)

    started = run(scenario())

    # The voucher lasts 300 s, less than the entitlement's 600 s.
    assert started.session.expires_at == 1300.0
    assert started.terms.boot_deadline == 350.0


def test_batch_stores_contact(tmp_path: Path) -> None:
    async def scenario() -> int:
        store = await _opened(tmp_path / "s.db")
        contact = Contact("Ada Lovelace", "ada@example.org")
        request = SessionRequest(A, CLICK, contact=contact)
        (result,) = await store.start_sessions([request], 1000.0, BOOT)
        await store.close()
        return _started(result).session.id

    session_id = run(scenario())

    with sqlite3.connect(tmp_path / "s.db") as db:
        row = db.execute(
            "SELECT contact_name, contact_email FROM sessions WHERE id=?",
            (session_id,),
        ).fetchone()
    assert row == ("Ada Lovelace", "ada@example.org")


def test_used_voucher_fails_only_its_request(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[SessionStart | Exception], int]:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _voucher(store, max_uses=1)
        used = _voucher_entitlement(voucher_id)
        requests = [
            SessionRequest(A, used),
            SessionRequest(B, used),
            SessionRequest(C, CLICK),
        ]
        results = await store.start_sessions(requests, 1000.0, BOOT)
        active = len(await store.active_sessions())
        await store.close()
        return results, active

    results, active = run(scenario())

    assert _started(results[0]).session.device == A
    assert isinstance(results[1], VoucherUnavailable)
    assert _started(results[2]).session.device == C
    assert active == 2


def test_device_limit_rolls_back_voucher_use(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[SessionStart | Exception], int]:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _voucher(store)
        limited = _voucher_entitlement(voucher_id, max_devices=1)
        requests = [SessionRequest(A, limited), SessionRequest(B, limited)]
        results = await store.start_sessions(requests, 1000.0, BOOT)
        (voucher,) = await store.vouchers()
        await store.close()
        return results, voucher.uses

    results, uses = run(scenario())

    assert isinstance(results[0], SessionStart)
    assert isinstance(results[1], DeviceLimitReached)
    # The second request counted a use before its limit was hit.
    assert uses == 1


def test_device_limit_end_oldest_displaces(tmp_path: Path) -> None:
    async def scenario() -> list[SessionStart | Exception]:
        store = await _opened(tmp_path / "s.db")
        voucher_id = await _voucher(store)
        limited = _voucher_entitlement(voucher_id, max_devices=1)
        requests = [SessionRequest(A, limited), SessionRequest(B, limited)]
        results = await store.start_sessions(
            requests, 1000.0, BOOT, on_device_limit="end-oldest"
        )
        await store.close()
        return results

    first, second = run(scenario())

    displaced = _started(second).displaced
    assert [session.id for session in displaced] == [_started(first).session.id]
    assert displaced[0].end_reason == EndReason.DEVICE_LIMIT


def test_batch_replaces_session_of_same_device(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[int]]:
        store = await _opened(tmp_path / "s.db")
        (first,) = await store.start_sessions([SessionRequest(A, CLICK)], 1000.0, BOOT)
        (second,) = await store.start_sessions([SessionRequest(A, CLICK)], 1001.0, BOOT)
        active = [session.id for session in await store.active_sessions()]
        await store.close()
        return _started(second).session.id, active

    second_id, active = run(scenario())

    assert active == [second_id]


def test_closed_store_fails_whole_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "s.db")
        await store.start_sessions([SessionRequest(A, CLICK)], 1000.0, BOOT)

    with pytest.raises(StoreError, match="not open"):
        run(scenario())
