"""Concurrent grants committed together, against the in-memory firewall."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from test_gateway import FailingEnforcer, FakeClock

from capport.auth.entitlement import Entitlement, Method
from capport.auth.records import NewVoucher
from capport.enforce.base import Grant, MemoryEnforcer
from capport.errors import (
    CapportError,
    DeviceBlocked,
    DeviceLimitReached,
    EnforcementError,
    VoucherUnavailable,
)
from capport.gateway import Gateway
from capport.metrics import GRANT_BATCH_SIZE
from capport.models import Device, EndReason, Session
from capport.neighbours import MemoryNeighbours
from capport.store.base import (
    BootClock,
    DeviceLimitPolicy,
    SessionRequest,
    SessionStart,
)
from capport.store.sqlite import SQLiteStore

DEVICES = [Device.parse(f"02:00:00:00:01:{n:02x}", f"192.0.2.{n}") for n in range(1, 6)]
A, B, C, D, E = DEVICES


class RecordingEnforcer(MemoryEnforcer):
    """A MemoryEnforcer that records the devices of each grant transaction."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[list[Device]] = []

    def grant(self, grants: list[Grant]) -> None:
        self.transactions.append([grant.device for grant in grants])
        super().grant(grants)


class GatedStore(SQLiteStore):
    """A SQLiteStore whose start_sessions waits while its gate is cleared."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.gate.set()

    async def start_sessions(
        self,
        requests: list[SessionRequest],
        now: float,
        boot: BootClock,
        *,
        on_device_limit: DeviceLimitPolicy = "reject",
    ) -> list[SessionStart | CapportError]:
        await self.gate.wait()
        return await super().start_sessions(
            requests, now, boot, on_device_limit=on_device_limit
        )


def _gateway(tmp_path: Path, enforcer: MemoryEnforcer) -> tuple[Gateway, GatedStore]:
    store = GatedStore(tmp_path / "s.db")
    neighbours = MemoryNeighbours({device.ip: device.mac for device in DEVICES})
    gateway = Gateway(store, enforcer, neighbours, 600, FakeClock().clocks())
    return gateway, store


async def _started(gateway: Gateway, store: SQLiteStore) -> None:
    await store.open()
    await gateway.start()


def _user(name: str, max_devices: int) -> Entitlement:
    return Entitlement(Method.USER, 600, subject=name, max_devices=max_devices)


def test_concurrent_grants_share_one_transaction(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> tuple[list[Session], list[Session]]:
        await _started(gateway, store)
        try:
            granted = await asyncio.gather(
                *(gateway.grant(device, "click-through") for device in DEVICES)
            )
            return list(granted), await store.active_sessions()
        finally:
            await store.close()

    granted, active = asyncio.run(scenario())

    assert [session.device for session in granted] == DEVICES
    assert len({session.id for session in granted}) == len(DEVICES)
    assert [session.id for session in active] == [session.id for session in granted]
    assert enforcer.transactions == [DEVICES]
    for session in granted:
        assert gateway.session_for(session.device) == session


def test_grants_during_commit_join_next_batch(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> None:
        await _started(gateway, store)
        try:
            store.gate.clear()
            first = asyncio.create_task(gateway.grant(A, "click-through"))
            await asyncio.sleep(0.01)
            later = [
                asyncio.create_task(gateway.grant(device, "click-through"))
                for device in (B, C, D)
            ]
            await asyncio.sleep(0.01)
            store.gate.set()
            await asyncio.gather(first, *later)
        finally:
            await store.close()

    asyncio.run(scenario())

    assert enforcer.transactions == [[A], [B, C, D]]


def test_device_limit_fails_only_that_grant(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> list[object]:
        await _started(gateway, store)
        try:
            grants = [
                gateway.grant(A, _user("alice", 1)),
                gateway.grant(B, _user("alice", 1)),
                gateway.grant(C, "click-through"),
            ]
            return list(await asyncio.gather(*grants, return_exceptions=True))
        finally:
            await store.close()

    first, second, third = asyncio.run(scenario())

    assert isinstance(first, Session)
    assert isinstance(second, DeviceLimitReached)
    assert isinstance(third, Session)
    assert set(enforcer.devices) == {A, C}


def test_used_voucher_fails_only_that_grant(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> list[object]:
        await _started(gateway, store)
        try:
            new = NewVoucher("0" * 64, 600.0, max_uses=1)
            (voucher,) = await store.add_vouchers([new], now=1000.0)
            used = Entitlement(Method.VOUCHER, 600, subject=str(voucher.id))
            await gateway.grant(A, used)
            grants = [gateway.grant(B, used), gateway.grant(C, "click-through")]
            return list(await asyncio.gather(*grants, return_exceptions=True))
        finally:
            await store.close()

    rejected, granted = asyncio.run(scenario())

    assert isinstance(rejected, VoucherUnavailable)
    assert isinstance(granted, Session)
    # B and C were one batch: the kernel got C alone in its transaction.
    assert enforcer.transactions == [[A], [C]]


def test_kernel_failure_fails_whole_batch(tmp_path: Path) -> None:
    gateway, store = _gateway(tmp_path, FailingEnforcer())

    async def scenario() -> tuple[list[object], list[Session]]:
        await _started(gateway, store)
        try:
            grants = [gateway.grant(device, "click-through") for device in (A, B, C)]
            results = await asyncio.gather(*grants, return_exceptions=True)
            return list(results), await store.active_sessions()
        finally:
            await store.close()

    results, active = asyncio.run(scenario())

    for result in results:
        assert isinstance(result, EnforcementError)
    assert active == []
    assert gateway.sessions() == []


def test_kernel_failure_marks_sessions_failed(tmp_path: Path) -> None:
    gateway, store = _gateway(tmp_path, FailingEnforcer())

    async def scenario() -> None:
        await _started(gateway, store)
        try:
            grants = [gateway.grant(device, "click-through") for device in (A, B)]
            await asyncio.gather(*grants, return_exceptions=True)
        finally:
            await store.close()

    asyncio.run(scenario())

    with sqlite3.connect(tmp_path / "s.db") as db:
        reasons = db.execute("SELECT end_reason FROM sessions ORDER BY id").fetchall()
    assert reasons == [("failed",), ("failed",)]


def test_mac_blocked_while_queued_fails_that_grant(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> list[object]:
        await _started(gateway, store)
        try:
            store.gate.clear()
            first = asyncio.create_task(gateway.grant(A, "click-through"))
            await asyncio.sleep(0.01)
            queued = [
                asyncio.create_task(gateway.grant(device, "click-through"))
                for device in (B, C)
            ]
            await asyncio.sleep(0.01)
            # The block waits for the lock that the first batch holds, and
            # gets it before the second batch does.
            block = asyncio.create_task(gateway.change_mac_list(B.mac, "block"))
            await asyncio.sleep(0.01)
            store.gate.set()
            await block
            results = await asyncio.gather(first, *queued, return_exceptions=True)
            return list(results)
        finally:
            await store.close()

    first, blocked, granted = asyncio.run(scenario())

    assert isinstance(first, Session)
    assert isinstance(blocked, DeviceBlocked)
    assert isinstance(granted, Session)
    assert set(enforcer.devices) == {A, C}


def test_same_device_twice_keeps_later_session(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)

    async def scenario() -> tuple[list[Session], list[Session]]:
        await _started(gateway, store)
        try:
            grants = [gateway.grant(A, "click-through") for _ in range(2)]
            granted = list(await asyncio.gather(*grants))
            return granted, await store.active_sessions()
        finally:
            await store.close()

    granted, active = asyncio.run(scenario())

    assert [session.id for session in active] == [granted[1].id]
    assert gateway.sessions() == [granted[1]]
    assert enforcer.transactions == [[A], [A]]


def test_end_oldest_cuts_off_earlier_grant(tmp_path: Path) -> None:
    enforcer = RecordingEnforcer()
    gateway, store = _gateway(tmp_path, enforcer)
    gateway.set_device_limit_policy("end-oldest")

    async def scenario() -> list[Session]:
        await _started(gateway, store)
        try:
            grants = [
                gateway.grant(A, _user("alice", 1)),
                gateway.grant(B, _user("alice", 1)),
            ]
            return list(await asyncio.gather(*grants))
        finally:
            await store.close()

    first, second = asyncio.run(scenario())

    assert gateway.sessions() == [second]
    assert set(enforcer.devices) == {B}
    with sqlite3.connect(tmp_path / "s.db") as db:
        (reason,) = db.execute(
            "SELECT end_reason FROM sessions WHERE id=?", (first.id,)
        ).fetchone()
    assert reason == EndReason.DEVICE_LIMIT


@pytest.mark.parametrize("count", [1, 40])
def test_batched_grants_index_every_session(tmp_path: Path, count: int) -> None:
    devices = [
        Device.parse(f"02:00:00:00:02:{n:02x}", f"192.0.2.{100 + n}")
        for n in range(count)
    ]
    store = SQLiteStore(tmp_path / "s.db")
    neighbours = MemoryNeighbours({device.ip: device.mac for device in devices})
    enforcer = MemoryEnforcer()
    gateway = Gateway(store, enforcer, neighbours, 600, FakeClock().clocks())

    async def scenario() -> list[Session]:
        await _started(gateway, store)
        try:
            grants = [gateway.grant(device, "click-through") for device in devices]
            return list(await asyncio.gather(*grants))
        finally:
            await store.close()

    granted = asyncio.run(scenario())

    assert gateway.sessions() == granted
    assert set(enforcer.devices) == set(devices)
    for session in granted:
        assert gateway.is_authorised_ip(session.device.ip)


def _batch_size_samples() -> dict[str, float]:
    (metric,) = GRANT_BATCH_SIZE.collect()
    return {
        sample.name: sample.value
        for sample in metric.samples
        if sample.name.endswith(("_count", "_sum"))
    }


def test_batch_size_is_observed(tmp_path: Path) -> None:
    gateway, store = _gateway(tmp_path, RecordingEnforcer())
    before = _batch_size_samples()

    async def scenario() -> None:
        await _started(gateway, store)
        try:
            await asyncio.gather(
                *(gateway.grant(device, "click-through") for device in DEVICES)
            )
        finally:
            await store.close()

    asyncio.run(scenario())
    after = _batch_size_samples()

    batches = after["capport_grant_batch_size_count"]
    batches -= before["capport_grant_batch_size_count"]
    logins = after["capport_grant_batch_size_sum"]
    logins -= before["capport_grant_batch_size_sum"]
    assert batches == 1
    assert logins == len(DEVICES)
