"""Grants, revocations, expiry and reconciliation in the control plane."""

import asyncio
import sqlite3
from ipaddress import ip_address

import pytest

from capport.enforce.base import Grant, MemoryEnforcer
from capport.errors import DeviceNotFound, EnforcementError
from capport.gateway import Clocks, Gateway
from capport.models import Device, EndReason
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")


class FakeClock:
    def __init__(self) -> None:
        self.wall_time = 1_000_000.0
        self.mono_time = 50.0
        self.boot_time = 500.0
        self.boot_id = "boot-1"

    def clocks(self) -> Clocks:
        return Clocks(
            wall=lambda: self.wall_time,
            monotonic=lambda: self.mono_time,
            boot=lambda: self.boot_time,
            boot_id=lambda: self.boot_id,
        )

    def advance(self, seconds: float) -> None:
        self.wall_time += seconds
        self.mono_time += seconds
        self.boot_time += seconds


class FailingEnforcer(MemoryEnforcer):
    def grant(self, grants: list[Grant]) -> None:
        raise EnforcementError("kernel said no")


def build(
    tmp_path, clock: FakeClock, enforcer: MemoryEnforcer | None = None
) -> tuple[Gateway, SQLiteStore, MemoryEnforcer, MemoryNeighbours]:
    store = SQLiteStore(tmp_path / "s.db")
    enforcer = enforcer or MemoryEnforcer()
    neighbours = MemoryNeighbours({A.ip: A.mac, B.ip: B.mac})
    gateway = Gateway(store, enforcer, neighbours, 600, clock.clocks())
    return gateway, store, enforcer, neighbours


def test_grant_commits_then_authorises(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, "click-through")
        active = await store.active_sessions()
        await store.close()
        assert [s.id for s in active] == [session.id]
        assert enforcer.devices == {A: 600}
        assert gateway.session_for(A) == session
        assert gateway.session_for(B) is None

    asyncio.run(scenario())


def test_grant_advances_address_epoch(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        before = gateway.address_epoch.value
        assert not gateway.has_session_ip(A.ip)
        await gateway.grant(A, "click-through")
        await store.close()
        assert gateway.address_epoch.value > before
        assert gateway.has_session_ip(A.ip)

    asyncio.run(scenario())


def test_failed_kernel_grant_leaves_no_session(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock, FailingEnforcer())

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        with pytest.raises(EnforcementError):
            await gateway.grant(A, "click-through")
        active = await store.active_sessions()
        await store.close()
        assert active == []
        assert gateway.session_for(A) is None

    asyncio.run(scenario())


def test_restart_keeps_remaining_time(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(first_run())
    clock.advance(200)
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def second_run() -> None:
        await store.open()
        await gateway.start()
        await store.close()

    asyncio.run(second_run())
    assert enforcer.devices == {A: pytest.approx(400)}


def test_restart_ends_sessions_that_ran_out(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(first_run())
    clock.advance(601)
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def second_run() -> list:
        await store.open()
        await gateway.start()
        active = await store.active_sessions()
        await store.close()
        return active

    assert asyncio.run(second_run()) == []
    assert enforcer.devices == {}


def test_restart_ends_expired_at_expiry(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(first_run())
    granted_at = clock.wall_time
    clock.advance(645)
    gateway, store, _, _ = build(tmp_path, clock)

    async def second_run() -> None:
        await store.open()
        await gateway.start()
        await store.close()

    asyncio.run(second_run())
    with sqlite3.connect(tmp_path / "s.db") as db:
        [(ended_at, reason)] = db.execute(
            "SELECT ended_at, end_reason FROM sessions"
        ).fetchall()
    assert reason == EndReason.EXPIRED
    assert ended_at == pytest.approx(granted_at + 600)


def test_expiry_uses_monotonic_clock(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> tuple[list, list]:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        clock.wall_time += 10_000  # the wall clock jumps forward
        early = await gateway.expire_due()
        clock.mono_time += 601
        late = await gateway.expire_due()
        await store.close()
        return early, late

    early, late = asyncio.run(scenario())
    assert early == []
    assert [s.end_reason for s in late] == [EndReason.EXPIRED]
    assert enforcer.devices == {}


def test_revoke_mac_ends_session(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> list:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await gateway.grant(B, "click-through")
        ended = await gateway.revoke_mac(A.mac, EndReason.REVOKED)
        await store.close()
        return ended

    ended = asyncio.run(scenario())
    assert [s.device for s in ended] == [A]
    assert enforcer.devices == {B: 600}
    assert enforcer.flushed == [A]
    assert not gateway.is_authorised_ip(A.ip)
    assert gateway.is_authorised_ip(B.ip)


def test_identify_uses_neighbour_table(tmp_path) -> None:
    gateway, _, _, _ = build(tmp_path, FakeClock())
    assert gateway.identify(A.ip) == A
    with pytest.raises(DeviceNotFound, match="192.0.2.99"):
        gateway.identify(ip_address("192.0.2.99"))


def test_cloned_mac_is_a_conflict(tmp_path, caplog) -> None:
    clock = FakeClock()
    gateway, store, _, neighbours = build(tmp_path, clock)
    clone = Device.parse(A.mac, "192.0.2.50")
    neighbours.entries[clone.ip] = clone.mac

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(scenario())
    assert gateway.mac_conflict(clone) is not None
    assert "also seen at 192.0.2.50" in caplog.text
    assert gateway.session_for(clone) is None


def test_moved_device_is_not_a_conflict(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, neighbours = build(tmp_path, clock)
    moved = Device.parse(A.mac, "192.0.2.50")

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(scenario())
    del neighbours.entries[A.ip]
    neighbours.entries[moved.ip] = moved.mac
    assert gateway.mac_conflict(moved) is None


def test_new_mac_at_authorised_ip_is_not_authorised(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, neighbours = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(scenario())
    assert gateway.is_authorised_ip(A.ip)
    neighbours.entries[A.ip] = "02:00:00:00:00:77"
    assert not gateway.is_authorised_ip(A.ip)


def test_stale_old_address_is_not_a_conflict(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, neighbours = build(tmp_path, clock)
    moved = Device.parse(A.mac, "192.0.2.50")
    neighbours.entries[moved.ip] = moved.mac

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(scenario())
    assert gateway.mac_conflict(moved) is not None
    neighbours.stale.add(A.ip)
    assert gateway.mac_conflict(moved) is None
