"""How the gateway reads the kernel's counters at start and in accounting passes."""

from __future__ import annotations

import asyncio
import logging
import weakref
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from capport.auth.entitlement import Entitlement, Quota
from capport.enforce.base import DeviceUsage, Grant, MemoryEnforcer, Traffic
from capport.gateway import Clocks, Gateway, _SummedUsage
from capport.models import Device
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")
A_V6 = IPv6Address("2001:db8:1::11")


class Reading(dict[Device, DeviceUsage]):
    """A reading of the counters that a weak reference can follow."""


class WatchedEnforcer(MemoryEnforcer):
    """Records whether the last reading of its counters was still alive at install."""

    def __init__(self) -> None:
        super().__init__()
        self.reading: weakref.ref[Reading] | None = None
        self.reading_alive_at_install: bool | None = None

    def usage(self) -> dict[Device, DeviceUsage]:
        reading = Reading(super().usage())
        self.reading = weakref.ref(reading)
        return reading

    def install(self, grants: list[Grant]) -> None:
        if self.reading is not None:
            self.reading_alive_at_install = self.reading() is not None
        super().install(grants)


def gateway_on(tmp_path: Path, enforcer: MemoryEnforcer) -> tuple[Gateway, SQLiteStore]:
    store = SQLiteStore(tmp_path / "s.db")
    neighbours = MemoryNeighbours({A.ip: A.mac, B.ip: B.mac, A_V6: A.mac})
    clocks = Clocks(wall=lambda: 1_000_000.0, monotonic=lambda: 50.0)
    return Gateway(store, enforcer, neighbours, 600, clocks), store


def test_start_frees_old_counters_before_install(tmp_path: Path) -> None:
    enforcer = WatchedEnforcer()
    gateway, store = gateway_on(tmp_path, enforcer)

    async def scenario() -> None:
        await store.open()
        try:
            await gateway.start()
            await gateway.grant(B, "click-through")
            enforcer.counters[B] = DeviceUsage(Traffic(100, 200))
            # The restart reads the table the first start installed.
            await gateway.start()
        finally:
            await store.close()

    asyncio.run(scenario())

    assert enforcer.reading_alive_at_install is False


def test_restart_carries_old_counters(tmp_path: Path) -> None:
    enforcer = WatchedEnforcer()
    gateway, store = gateway_on(tmp_path, enforcer)

    async def scenario() -> Traffic:
        await store.open()
        try:
            await gateway.start()
            session = await gateway.grant(B, "click-through")
            enforcer.counters[B] = DeviceUsage(Traffic(100, 200))
            await gateway.start()
            return gateway.usage(session)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == Traffic(100, 200)


def test_account_sums_learned_addresses(tmp_path: Path) -> None:
    enforcer = MemoryEnforcer()
    gateway, store = gateway_on(tmp_path, enforcer)

    async def scenario() -> tuple[Traffic, Traffic]:
        await store.open()
        try:
            await gateway.start()
            with_learned = await gateway.grant(A, "click-through")
            alone = await gateway.grant(B, "click-through")
            assert gateway.learned_addresses(with_learned) == [A_V6]
            enforcer.counters[A] = DeviceUsage(Traffic(10, 20))
            enforcer.counters[Device(A.mac, A_V6)] = DeviceUsage(Traffic(1, 2))
            enforcer.counters[B] = DeviceUsage(Traffic(5, 7))
            await gateway.account()
            return gateway.usage(with_learned), gateway.usage(alone)
        finally:
            await store.close()

    with_learned, alone = asyncio.run(scenario())

    assert with_learned == Traffic(11, 22)
    assert alone == Traffic(5, 7)


def test_quota_counts_learned_addresses(tmp_path: Path) -> None:
    enforcer = MemoryEnforcer()
    gateway, store = gateway_on(tmp_path, enforcer)
    entitlement = Entitlement("click-through", 600, quota=Quota(down=1000))

    async def scenario() -> list[Device]:
        await store.open()
        try:
            await gateway.start()
            await gateway.grant(A, entitlement)
            await gateway.grant(B, entitlement)
            # Each address stays under the quota, but A's two together go over it.
            enforcer.counters[A] = DeviceUsage(Traffic(0, 600), {"down": 600})
            enforcer.counters[Device(A.mac, A_V6)] = DeviceUsage(
                Traffic(0, 500), {"down": 500}
            )
            enforcer.counters[B] = DeviceUsage(Traffic(0, 900), {"down": 900})
            await gateway.account()
            return [s.device for s in gateway.sessions()]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [B]


def test_reconcile_logs_live_and_ended_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    enforcer = MemoryEnforcer()
    wall = [1_000_000.0]
    store = SQLiteStore(tmp_path / "s.db")
    clocks = Clocks(
        wall=lambda: wall[0],
        monotonic=lambda: 50.0,
        boot=lambda: wall[0] - 999_000.0,
        boot_id=lambda: "boot-1",
    )
    neighbours = MemoryNeighbours({A.ip: A.mac, B.ip: B.mac})
    gateway = Gateway(store, enforcer, neighbours, 600, clocks)

    async def scenario() -> None:
        await store.open()
        try:
            await gateway.start()
            await gateway.grant(A, Entitlement("click-through", 60))
            await gateway.grant(B, Entitlement("click-through", 6000))
            # A's session runs out while the gateway is down.
            wall[0] += 120
            await gateway.start()
        finally:
            await store.close()

    caplog.set_level(logging.INFO, "capport.gateway")
    asyncio.run(scenario())

    lines = [r.getMessage() for r in caplog.records if "Reconciled" in r.getMessage()]
    assert lines[-1] == (
        "Reconciled the firewall with the store: 1 active sessions, "
        "1 ended while the gateway was down."
    )


def test_summed_usage_prefers_sums() -> None:
    summed = DeviceUsage(Traffic(11, 22))
    readings = {A: DeviceUsage(Traffic(10, 20)), B: DeviceUsage(Traffic(5, 7))}

    usage = _SummedUsage({A: summed}, readings)

    assert usage.get(A) is summed
    assert usage.get(B) is readings[B]
    assert usage.get(Device(A.mac, A_V6)) is None
    assert list(usage) == [A, B]
