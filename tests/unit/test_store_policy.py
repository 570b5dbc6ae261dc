"""The store's session terms, usage and MAC list overrides."""

import asyncio
from pathlib import Path

from capport.accounting import SessionTerms, UsageRecord
from capport.auth.entitlement import Entitlement
from capport.enforce.base import Limits, Traffic
from capport.models import Device, EndReason
from capport.store.sqlite import SQLiteStore

DEVICE = Device.parse("02:00:00:00:00:11", "192.0.2.11")
CLICK = Entitlement("click-through", 600)
TERMS = SessionTerms(Limits(1, 2, 3, 4, 5), 60.0, "boot-1", 1234.5)


def test_terms_round_trip(tmp_path: Path) -> None:
    async def scenario() -> dict:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        session = (await store.start_session(DEVICE, CLICK, now=1000.0)).session
        await store.save_terms(session.id, TERMS)
        found = await store.session_terms([session.id])
        await store.close()
        return {key: value[0] for key, value in found.items()}

    assert asyncio.run(scenario()) == {1: TERMS}


def test_usage_round_trip(tmp_path: Path) -> None:
    record = UsageRecord(1, Traffic(10, 20), Traffic(3, 4))

    async def scenario() -> UsageRecord:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        session = (await store.start_session(DEVICE, CLICK, now=1000.0)).session
        await store.save_terms(session.id, TERMS)
        await store.record_usage([record])
        found = await store.session_terms([session.id])
        await store.close()
        return found[session.id][1]

    assert asyncio.run(scenario()) == record


def test_terms_of_ended_session_not_returned(tmp_path: Path) -> None:
    async def scenario() -> dict:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        session = (await store.start_session(DEVICE, CLICK, now=1000.0)).session
        await store.save_terms(session.id, TERMS)
        await store.end_session(session.id, EndReason.QUOTA, now=1001.0)
        found = await store.session_terms([session.id])
        await store.close()
        return found

    assert asyncio.run(scenario()) == {}


def test_set_expiry_moves_active_session(tmp_path: Path) -> None:
    async def scenario() -> float:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        session = (await store.start_session(DEVICE, CLICK, now=1000.0)).session
        await store.set_expiry([(session.id, 5000.0)])
        (active,) = await store.active_sessions()
        await store.close()
        return active.expires_at

    assert asyncio.run(scenario()) == 5000.0


def test_mac_overrides_survive_reopen(tmp_path: Path) -> None:
    async def scenario() -> dict[str, str]:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        await store.set_mac_override("02:00:00:00:00:aa", "blocked", now=1.0)
        await store.set_mac_override("02:00:00:00:00:aa", "neither", now=2.0)
        await store.set_mac_override("02:00:00:00:00:bb", "trusted", now=3.0)
        await store.close()
        reopened = SQLiteStore(tmp_path / "s.db")
        await reopened.open()
        overrides = await reopened.mac_overrides()
        await reopened.close()
        return overrides

    assert asyncio.run(scenario()) == {
        "02:00:00:00:00:aa": "neither",
        "02:00:00:00:00:bb": "trusted",
    }


OTHER = Device.parse("02:00:00:00:00:12", "192.0.2.12")


def test_equal_terms_share_limits_and_boot_id(tmp_path: Path) -> None:
    async def scenario() -> list[SessionTerms]:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        ids = []
        for device in (DEVICE, OTHER):
            session = (await store.start_session(device, CLICK, now=1000.0)).session
            await store.save_terms(session.id, TERMS)
            ids.append(session.id)
        found = await store.session_terms(ids)
        await store.close()
        return [found[session_id][0] for session_id in ids]

    first, second = asyncio.run(scenario())

    assert first == second == TERMS
    assert first.limits is second.limits
    assert first.boot_id is second.boot_id


def test_active_sessions_share_method_string(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        for device in (DEVICE, OTHER):
            await store.start_session(device, CLICK, now=1000.0)
        sessions = await store.active_sessions()
        await store.close()
        return [session.method for session in sessions]

    first, second = asyncio.run(scenario())

    assert first == "click-through"
    assert first is second
