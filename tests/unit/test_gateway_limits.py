"""Session limits in the control plane, against the in-memory firewall."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from test_gateway import A, B, FakeClock, build

from capport.auth.entitlement import Bandwidth, Entitlement, Quota
from capport.enforce.base import DeviceUsage, Limits, Traffic
from capport.errors import DeviceBlocked
from capport.gateway import Gateway
from capport.models import EndReason
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")


def run(
    tmp_path, clock: FakeClock, scenario: Callable[[Gateway, SQLiteStore], Awaitable[T]]
) -> T:
    gateway, store, _, _ = build(tmp_path, clock)

    async def wrapped() -> T:
        await store.open()
        try:
            await gateway.start()
            return await scenario(gateway, store)
        finally:
            await store.close()

    return asyncio.run(wrapped())


def count(
    gateway: Gateway, up: int, down: int, quota_used: dict[str, int] | None = None
) -> None:
    """Set the in-memory firewall's counters for A."""
    enforcer = gateway._enforcer  # the MemoryEnforcer build() made
    usage = DeviceUsage(Traffic(up, down), quota_used or {})
    enforcer.counters[A] = usage  # type: ignore[attr-defined]


QUOTA = Entitlement("click-through", 600, quota=Quota(down=1000))
IDLE = Entitlement("click-through", 600, idle_timeout=60)


def test_grant_passes_limits_to_kernel(tmp_path) -> None:
    entitlement = Entitlement(
        "click-through", 600, quota=Quota(total=5000), bandwidth=Bandwidth(up=8000)
    )

    async def scenario(gateway: Gateway, store: SQLiteStore) -> Limits:
        await gateway.grant(A, entitlement)
        return gateway._enforcer.limits[A]  # type: ignore[attr-defined]

    assert run(tmp_path, FakeClock(), scenario) == Limits(
        quota_total=5000, rate_up=1000
    )


def test_grant_by_method_uses_configured_defaults(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)
    gateway.set_defaults(Entitlement("click-through", 1, quota=Quota(up=10)))

    async def scenario() -> float:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, "click-through")
        await store.close()
        return session.expires_at - session.started_at

    assert asyncio.run(scenario()) == 600
    assert enforcer.limits[A] == Limits(quota_up=10)


def test_account_ends_session_over_quota(tmp_path) -> None:
    async def scenario(gateway: Gateway, store: SQLiteStore) -> list[str | None]:
        await gateway.grant(A, QUOTA)
        await gateway.grant(B, QUOTA)
        count(gateway, 10, 990, {"down": 1000})
        ended = await gateway.account()
        return [s.end_reason for s in ended]

    assert run(tmp_path, FakeClock(), scenario) == [EndReason.QUOTA]


def test_account_keeps_session_under_quota(tmp_path) -> None:
    async def scenario(gateway: Gateway, store: SQLiteStore) -> int:
        await gateway.grant(A, QUOTA)
        count(gateway, 10, 900, {"down": 900})
        await gateway.account()
        return len(gateway.sessions())

    assert run(tmp_path, FakeClock(), scenario) == 1


def test_account_ends_idle_session(tmp_path) -> None:
    clock = FakeClock()

    async def scenario(gateway: Gateway, store: SQLiteStore) -> list[str | None]:
        await gateway.grant(A, IDLE)
        count(gateway, 100, 100)
        clock.advance(30)
        await gateway.account()
        clock.advance(59)
        early = await gateway.account()
        clock.advance(1)
        late = await gateway.account()
        return [s.end_reason for s in early + late]

    assert run(tmp_path, clock, scenario) == [EndReason.IDLE]


def test_account_stores_usage(tmp_path) -> None:
    async def scenario(gateway: Gateway, store: SQLiteStore) -> Traffic:
        session = await gateway.grant(A, "click-through")
        count(gateway, 123, 4567)
        await gateway.account()
        stored = await store.session_terms([session.id])
        return stored[session.id][1].total

    assert run(tmp_path, FakeClock(), scenario) == Traffic(123, 4567)


def test_restart_carries_usage_into_quota(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, QUOTA)
        count(gateway, 5, 400)
        await gateway.account()
        await store.close()

    asyncio.run(first_run())
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def second_run() -> None:
        await store.open()
        await gateway.start()
        await store.close()

    asyncio.run(second_run())
    assert enforcer.limits[A] == Limits(quota_down=1000)
    assert gateway.usage(gateway.sessions()[0]) == Traffic(5, 400)


@pytest.mark.parametrize("jump", [3600.0, -3600.0])
def test_restart_after_wall_clock_jump_keeps_time(tmp_path, jump: float) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(first_run())
    clock.advance(100)
    clock.wall_time += jump
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def second_run() -> float:
        await store.open()
        await gateway.start()
        expires_at = (await store.active_sessions())[0].expires_at
        await store.close()
        return expires_at

    expires_at = asyncio.run(second_run())
    assert enforcer.devices == {A: pytest.approx(500)}
    assert expires_at == pytest.approx(clock.wall_time + 500)


def test_restart_after_reboot_caps_clock_set_back(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, _, _ = build(tmp_path, clock)

    async def first_run() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, "click-through")
        await store.close()

    asyncio.run(first_run())
    clock.boot_id = "boot-2"
    clock.boot_time = 10.0
    clock.wall_time -= 3600
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def second_run() -> None:
        await store.open()
        await gateway.start()
        await store.close()

    asyncio.run(second_run())
    assert enforcer.devices == {A: pytest.approx(600)}


def test_blocked_mac_cannot_be_granted(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)
    gateway.set_configured_macs([], [A.mac])

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        try:
            with pytest.raises(DeviceBlocked, match=A.mac):
                await gateway.grant(A, "click-through")
        finally:
            await store.close()

    asyncio.run(scenario())
    assert enforcer.blocked == {A.mac}
    assert enforcer.devices == {}


def test_block_ends_sessions_and_persists(tmp_path) -> None:
    clock = FakeClock()

    async def scenario(gateway: Gateway, store: SQLiteStore) -> list[str | None]:
        await gateway.grant(A, "click-through")
        ended = await gateway.change_mac_list(A.mac, "block")
        return [s.end_reason for s in ended]

    assert run(tmp_path, clock, scenario) == [EndReason.BLOCKED]
    gateway, store, enforcer, _ = build(tmp_path, clock)

    async def restarted() -> None:
        await store.open()
        await gateway.start()
        await store.close()

    asyncio.run(restarted())
    assert enforcer.blocked == {A.mac}


def test_trust_sets_kernel_list(tmp_path) -> None:
    async def scenario(gateway: Gateway, store: SQLiteStore) -> set[str]:
        await gateway.change_mac_list(B.mac, "trust")
        return set(gateway._enforcer.trusted)  # type: ignore[attr-defined]

    assert run(tmp_path, FakeClock(), scenario) == {B.mac}


def test_untrust_removes_configured_mac(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)
    gateway.set_configured_macs([B.mac], [])

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.change_mac_list(B.mac, "untrust")
        await store.close()

    asyncio.run(scenario())
    assert enforcer.trusted == set()


def test_entitlement_gets_configured_limits_it_leaves_open(tmp_path) -> None:
    clock = FakeClock()
    gateway, store, enforcer, _ = build(tmp_path, clock)
    gateway.set_defaults(
        Entitlement("click-through", 1, quota=Quota(up=10), idle_timeout=30)
    )
    own = Entitlement("click-through", 600, quota=Quota(total=99))

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, Entitlement("click-through", 600))
        await gateway.grant(B, own)
        await store.close()

    asyncio.run(scenario())
    assert enforcer.limits[A] == Limits(quota_up=10)
    assert enforcer.limits[B] == Limits(quota_total=99)
