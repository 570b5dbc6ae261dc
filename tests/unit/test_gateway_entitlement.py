"""Grants from entitlements: their duration, subject and device limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from capport.auth.entitlement import Entitlement, Method
from capport.enforce.base import MemoryEnforcer
from capport.errors import DeviceLimitReached
from capport.gateway import Clocks, Gateway
from capport.models import Device
from capport.neighbours import MemoryNeighbours
from capport.store.base import DeviceLimitPolicy
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")
WALL = 1_000_000.0
MONOTONIC = 50.0

ALICE = Entitlement(Method.USER, 1200.0, subject="alice", max_devices=1)


def build(
    tmp_path: Path, policy: DeviceLimitPolicy
) -> tuple[Gateway, SQLiteStore, MemoryEnforcer]:
    store = SQLiteStore(tmp_path / "s.db")
    enforcer = MemoryEnforcer()
    neighbours = MemoryNeighbours({A.ip: A.mac, B.ip: B.mac})
    clocks = Clocks(wall=lambda: WALL, monotonic=lambda: MONOTONIC)
    gateway = Gateway(
        store, enforcer, neighbours, 600, clocks, device_limit_policy=policy
    )
    return gateway, store, enforcer


def test_entitlement_sets_duration_and_subject(tmp_path: Path) -> None:
    gateway, store, enforcer = build(tmp_path, "reject")

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        session = await gateway.grant(A, ALICE)
        await store.close()
        assert session.method == Method.USER
        assert session.subject == "alice"
        assert session.expires_at == WALL + 1200.0
        assert enforcer.devices == {A: 1200.0}
        assert gateway.remaining(session) == 1200.0

    asyncio.run(scenario())


def test_reject_policy_keeps_first_device(tmp_path: Path) -> None:
    gateway, store, enforcer = build(tmp_path, "reject")

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        first = await gateway.grant(A, ALICE)
        with pytest.raises(DeviceLimitReached):
            await gateway.grant(B, ALICE)
        await store.close()
        assert gateway.session_for(A) == first
        assert gateway.session_for(B) is None
        assert set(enforcer.devices) == {A}

    asyncio.run(scenario())


def test_end_oldest_policy_cuts_first_device(tmp_path: Path) -> None:
    gateway, store, enforcer = build(tmp_path, "end-oldest")

    async def scenario() -> None:
        await store.open()
        await gateway.start()
        await gateway.grant(A, ALICE)
        second = await gateway.grant(B, ALICE)
        active = await store.active_sessions()
        await store.close()
        assert gateway.session_for(A) is None
        assert gateway.session_for(B) == second
        assert set(enforcer.devices) == {B}
        assert A in enforcer.flushed
        assert [session.device for session in active] == [B]

    asyncio.run(scenario())
