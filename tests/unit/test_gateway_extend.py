"""Extending sessions: the store's end and the kernel's timeout move together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_gateway import A, B, FakeClock, build
from test_gateway_ipv6 import MAC as MAC6
from test_gateway_ipv6 import SLAAC, V4, run, table

from capport.auth.entitlement import Entitlement, Quota
from capport.config import MAX_SESSION_SECONDS
from capport.enforce.base import DeviceUsage, Grant, MemoryEnforcer, Traffic
from capport.errors import EnforcementError, SessionTooLong
from capport.gateway import Gateway
from capport.models import Device, EndReason


class ExtendFailingEnforcer(MemoryEnforcer):
    """Accepts the first grant of each device, then rejects every change."""

    def grant(self, grants: list[Grant]) -> None:
        if any(grant.device in self.devices for grant in grants):
            raise EnforcementError("kernel rejected the change")
        super().grant(grants)


def test_extend_moves_store_and_kernel(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, "click-through")
        clock.advance(100)
        (extended,) = await gateway.extend_mac(A.mac, 300)
        stored = await store.active_sessions()
        await store.close()
        assert enforcer.devices[A] == 800
        assert gateway.remaining(extended) == 800
        assert extended.expires_at == session.expires_at + 300
        assert stored[0].expires_at == session.expires_at + 300

    asyncio.run(scenario())


def test_extend_up_to_maximum_is_allowed(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await gateway.extend_mac(A.mac, MAX_SESSION_SECONDS - 600)
        await store.close()
        assert enforcer.devices[A] == MAX_SESSION_SECONDS

    asyncio.run(scenario())


def test_extend_past_maximum_is_rejected(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, "click-through")
        with pytest.raises(SessionTooLong) as raised:
            await gateway.extend_mac(A.mac, MAX_SESSION_SECONDS)
        stored = await store.active_sessions()
        await store.close()
        assert "would end it in 31536600 s (365.01 days)" in str(raised.value)
        assert "by at most 31535400 s (364.99 days)" in str(raised.value)
        assert enforcer.devices[A] == 600
        assert gateway.remaining(session) == 600
        assert stored[0].expires_at == session.expires_at

    asyncio.run(scenario())


def test_rejected_extension_changes_no_session(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)
    second = Device(A.mac, B.ip)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, Entitlement("admin", 500))
        await gateway.grant(second, Entitlement("admin", 400 * 86400 // 2))
        with pytest.raises(SessionTooLong):
            await gateway.extend_mac(A.mac, 200 * 86400)
        await store.close()
        assert enforcer.devices[A] == 500
        assert enforcer.devices[second] == 200 * 86400

    asyncio.run(scenario())


def test_extend_unknown_mac_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        extended = await gateway.extend_mac(B.mac, 300)
        await store.close()
        assert extended == []
        assert enforcer.devices == {A: 600}

    asyncio.run(scenario())


def test_failed_kernel_change_restores_store(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock, ExtendFailingEnforcer())

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, "click-through")
        with pytest.raises(EnforcementError):
            await gateway.extend_mac(A.mac, 300)
        stored = await store.active_sessions()
        await store.close()
        assert stored[0].expires_at == session.expires_at
        assert gateway.remaining(session) == 600
        assert enforcer.devices == {A: 600}

    asyncio.run(scenario())


def test_extend_moves_learned_ipv6_timeouts(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC6), (str(SLAAC), MAC6))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        await gateway.extend_mac(MAC6, 300)
        assert enforcer.devices == {V4: 900, Device(MAC6, SLAAC): 900}

    run(tmp_path, neighbours, scenario)


def test_revoke_after_extend_removes_learned(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC6), (str(SLAAC), MAC6))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        await gateway.extend_mac(MAC6, 300)
        await gateway.revoke_mac(MAC6, EndReason.REVOKED)
        assert enforcer.devices == {}
        assert gateway.session_for(Device(MAC6, SLAAC)) is None
        assert gateway.sessions() == []

    run(tmp_path, neighbours, scenario)


QUOTA = Entitlement("click-through", 600, quota=Quota(total=1_000_000))


def test_extend_keeps_quota_and_usage(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, QUOTA)
        enforcer.counters[A] = DeviceUsage(Traffic(300, 700))
        await gateway.account()
        (extended,) = await gateway.extend_mac(A.mac, 300)
        stored = await store.session_terms([session.id])
        await store.close()
        assert enforcer.limits[A].quota_total == 1_000_000
        assert gateway.usage(extended) == Traffic(300, 700)
        assert stored[session.id][1].total == Traffic(300, 700)

    asyncio.run(scenario())


def test_extend_moves_boot_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, QUOTA)
        before = (await store.session_terms([session.id]))[session.id][0]
        await gateway.extend_mac(A.mac, 300)
        after = (await store.session_terms([session.id]))[session.id][0]
        await store.close()
        assert before.boot_deadline is not None
        assert after.boot_deadline is not None
        assert after.boot_deadline - before.boot_deadline == pytest.approx(300, abs=5)
        assert after.limits == before.limits

    asyncio.run(scenario())


def test_counters_after_extend_add_to_usage(tmp_path: Path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, QUOTA)
        enforcer.counters[A] = DeviceUsage(Traffic(300, 700))
        await gateway.account()
        (extended,) = await gateway.extend_mac(A.mac, 300)
        enforcer.counters[A] = DeviceUsage(Traffic(10, 20))
        await gateway.account()
        await store.close()
        assert gateway.usage(extended) == Traffic(310, 720)

    asyncio.run(scenario())
