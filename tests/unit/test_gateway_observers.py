"""Session observers: told of starts, of ends before the revoke and after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from capport.auth.entitlement import Entitlement, Method
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Gateway
from capport.models import Device, EndReason, Session
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
RADIUS_USER = Entitlement(Method.RADIUS, 600, subject="alice")


class Recorder:
    """An observer that notes what the firewall contained at each call."""

    def __init__(self, enforcer: MemoryEnforcer) -> None:
        self.enforcer = enforcer
        self.started: list[tuple[int, bool]] = []
        self.ending: list[tuple[int, bool]] = []
        self.ended: list[tuple[int, str, bool]] = []

    def session_started(self, session: Session) -> None:
        self.started.append((session.id, session.device in self.enforcer.devices))

    async def session_ending(self, session: Session) -> None:
        self.ending.append((session.id, session.device in self.enforcer.devices))

    def session_ended(self, session: Session, reason: str) -> None:
        authorised = session.device in self.enforcer.devices
        self.ended.append((session.id, reason, authorised))


Scenario = Callable[[Gateway, Recorder], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        enforcer = MemoryEnforcer()
        gateway = Gateway(store, enforcer, MemoryNeighbours(), session_duration=3600)
        await gateway.start()
        recorder = Recorder(enforcer)
        gateway.add_observer(recorder)
        try:
            await scenario(gateway, recorder)
        finally:
            await store.close()

    asyncio.run(main())


def test_observer_told_of_grant(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        session = await gateway.grant(A, RADIUS_USER)
        assert recorder.started == [(session.id, True)]

    run(tmp_path, scenario)


def test_observer_called_around_revoke(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        session = await gateway.grant(A, RADIUS_USER)
        await gateway.end(session, EndReason.LOGOUT)
        assert recorder.ending == [(session.id, True)]
        assert recorder.ended == [(session.id, EndReason.LOGOUT, False)]

    run(tmp_path, scenario)


def test_observer_told_of_revoke_by_mac(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        session = await gateway.grant(A, RADIUS_USER)
        await gateway.revoke_mac(A.mac, EndReason.REVOKED)
        assert recorder.ended == [(session.id, EndReason.REVOKED, False)]

    run(tmp_path, scenario)


def test_observer_told_of_replaced_session(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        first = await gateway.grant(A, RADIUS_USER)
        second = await gateway.grant(A, RADIUS_USER)
        assert recorder.ended[0][:2] == (first.id, EndReason.REPLACED)
        assert [entry[0] for entry in recorder.started] == [first.id, second.id]

    run(tmp_path, scenario)


def test_observer_told_of_expiry_at_reload(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        short = Entitlement(Method.RADIUS, 0.05, subject="alice")
        session = await gateway.grant(A, short)
        await asyncio.sleep(0.1)
        await gateway.start()
        assert recorder.ended == [(session.id, EndReason.EXPIRED, False)]

    run(tmp_path, scenario)


def test_observer_told_of_device_limit_end(tmp_path: Path) -> None:
    async def scenario(gateway: Gateway, recorder: Recorder) -> None:
        gateway.set_device_limit_policy("end-oldest")
        limited = Entitlement(Method.RADIUS, 600, subject="alice", max_devices=1)
        first = await gateway.grant(A, limited)
        other = Device.parse("02:00:00:00:00:12", "192.0.2.12")
        await gateway.grant(other, limited)
        assert recorder.ending == [(first.id, True)]
        assert recorder.ended == [(first.id, EndReason.DEVICE_LIMIT, False)]

    run(tmp_path, scenario)
