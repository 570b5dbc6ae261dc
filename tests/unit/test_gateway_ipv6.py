"""IPv6 addresses that a session covers beyond the address it was granted at."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ipaddress import IPv6Address, ip_address
from pathlib import Path

from capport.enforce.base import MemoryEnforcer
from capport.gateway import Clocks, Gateway
from capport.models import Device, EndReason
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

MAC = "02:00:00:00:00:11"
OTHER_MAC = "02:00:00:00:00:12"
V4 = Device.parse(MAC, "192.0.2.11")
SLAAC = IPv6Address("2001:db8:1::ff:fe00:11")
PRIVACY = IPv6Address("2001:db8:1::abcd")
OTHER_V6 = IPv6Address("2001:db8:1::ff:fe00:12")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def clocks(self) -> Clocks:
        return Clocks(wall=lambda: self.now, monotonic=lambda: self.now)


def run(
    tmp_path: Path,
    neighbours: MemoryNeighbours,
    scenario: Callable[[Gateway, MemoryEnforcer], Awaitable[None]],
    clock: Clock | None = None,
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    enforcer = MemoryEnforcer()
    gateway = Gateway(store, enforcer, neighbours, 600, (clock or Clock()).clocks())

    async def main() -> None:
        await store.open()
        try:
            await gateway.start()
            await scenario(gateway, enforcer)
        finally:
            await store.close()

    asyncio.run(main())


def table(*entries: tuple[str, str]) -> MemoryNeighbours:
    return MemoryNeighbours({ip_address(ip): mac for ip, mac in entries})


def test_grant_authorises_mac_ipv6_neighbours(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(SLAAC), MAC), (str(OTHER_V6), OTHER_MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        assert set(enforcer.devices) == {V4, Device(MAC, SLAAC)}
        assert gateway.learned_addresses(session) == [SLAAC]

    run(tmp_path, neighbours, scenario)


def test_learned_address_found_by_session_for(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(SLAAC), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        assert gateway.session_for(Device(MAC, SLAAC)) == session
        assert gateway.session_for(Device(OTHER_MAC, SLAAC)) is None

    run(tmp_path, neighbours, scenario)


def test_new_ipv6_address_learned(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        assert await gateway.learn_ipv6(MAC, PRIVACY)
        assert enforcer.devices[Device(MAC, PRIVACY)] == 600
        assert gateway.learned_addresses(session) == [PRIVACY]
        assert not await gateway.learn_ipv6(MAC, PRIVACY)

    run(tmp_path, neighbours, scenario)


def test_learned_address_advances_address_epoch(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        before = gateway.address_epoch.value
        assert await gateway.learn_ipv6(MAC, PRIVACY)
        assert gateway.address_epoch.value > before
        assert gateway.has_session_ip(PRIVACY)

    run(tmp_path, neighbours, scenario)


def test_learned_address_gets_remaining_time(tmp_path: Path) -> None:
    clock = Clock()
    neighbours = table((str(V4.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        clock.now += 200
        await gateway.learn_ipv6(MAC, PRIVACY)
        assert enforcer.devices[Device(MAC, PRIVACY)] == 400

    run(tmp_path, neighbours, scenario, clock)


def test_unauthorised_mac_not_learned(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        assert not await gateway.learn_ipv6(OTHER_MAC, OTHER_V6)
        assert Device(OTHER_MAC, OTHER_V6) not in enforcer.devices

    run(tmp_path, table((str(V4.ip), MAC)), scenario)


def test_address_of_other_session_not_taken(tmp_path: Path) -> None:
    other = Device(OTHER_MAC, OTHER_V6)
    neighbours = table((str(V4.ip), MAC), (str(OTHER_V6), OTHER_MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(other, "click-through")
        await gateway.grant(V4, "click-through")
        assert not await gateway.learn_ipv6(MAC, OTHER_V6)
        assert gateway.session_for(other) is not None

    run(tmp_path, neighbours, scenario)


def test_revoke_removes_learned_addresses(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(SLAAC), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        await gateway.learn_ipv6(MAC, PRIVACY)
        await gateway.revoke_mac(MAC, EndReason.REVOKED)
        assert enforcer.devices == {}
        assert set(enforcer.flushed) == {V4, Device(MAC, SLAAC), Device(MAC, PRIVACY)}
        assert gateway.session_for(Device(MAC, PRIVACY)) is None
        assert not await gateway.learn_ipv6(MAC, IPv6Address("2001:db8:1::beef"))

    run(tmp_path, neighbours, scenario)


def test_expiry_removes_learned_addresses(tmp_path: Path) -> None:
    clock = Clock()

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        await gateway.learn_ipv6(MAC, PRIVACY)
        clock.now += 601
        ended = await gateway.expire_due()
        assert len(ended) == 1
        assert enforcer.devices == {}
        assert Device(MAC, PRIVACY) in enforcer.flushed

    run(tmp_path, table((str(V4.ip), MAC)), scenario, clock)


def test_restart_relearns_from_neighbours(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        await gateway.learn_ipv6(MAC, PRIVACY)
        neighbours.entries[PRIVACY] = MAC
        await gateway.start()
        assert set(enforcer.devices) == {V4, Device(MAC, PRIVACY)}
        assert gateway.learned_addresses(gateway.sessions()[0]) == [PRIVACY]
        assert gateway.sessions()[0].id == session.id

    run(tmp_path, neighbours, scenario)


def test_sessions_listed_once_with_learned(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(SLAAC), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        await gateway.learn_ipv6(MAC, PRIVACY)
        assert len(gateway.sessions()) == 1

    run(tmp_path, neighbours, scenario)


def test_ipv6_login_of_authorised_mac_no_conflict(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(PRIVACY), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        assert gateway.mac_conflict(Device(MAC, PRIVACY)) is None

    run(tmp_path, neighbours, scenario)


def test_second_ipv4_of_authorised_mac_conflicts(tmp_path: Path) -> None:
    clone = Device.parse(MAC, "192.0.2.13")
    neighbours = table((str(V4.ip), MAC), (str(clone.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        assert gateway.mac_conflict(clone) == session

    run(tmp_path, neighbours, scenario)


def test_grant_at_learned_address_keeps_session(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC), (str(SLAAC), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        session = await gateway.grant(V4, "click-through")
        again = await gateway.grant(Device(MAC, SLAAC), "click-through")
        assert again == session
        assert len(gateway.sessions()) == 1

    run(tmp_path, neighbours, scenario)


def test_relearn_all_after_lost_messages(tmp_path: Path) -> None:
    neighbours = table((str(V4.ip), MAC))

    async def scenario(gateway: Gateway, enforcer: MemoryEnforcer) -> None:
        await gateway.grant(V4, "click-through")
        neighbours.entries[PRIVACY] = MAC
        neighbours.entries[OTHER_V6] = OTHER_MAC
        assert await gateway.learn_all_ipv6() == 1
        assert Device(MAC, PRIVACY) in enforcer.devices

    run(tmp_path, neighbours, scenario)
