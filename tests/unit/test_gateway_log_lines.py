"""Log lines of the gateway for the ends of sessions that a grant causes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from capport.enforce.base import MemoryEnforcer
from capport.gateway import Gateway
from capport.models import Device
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B_AT_A_IP = Device.parse("02:00:00:00:00:12", "192.0.2.11")


def grant_twice(tmp_path: Path, first: Device, second: Device) -> tuple[int, int]:
    """Grant first, then second, and return both session ids."""

    async def main() -> tuple[int, int]:
        store = SQLiteStore(tmp_path / "s.db")
        await store.open()
        gateway = Gateway(store, MemoryEnforcer(), MemoryNeighbours(), 600)
        await gateway.start()
        try:
            old = await gateway.grant(first, "click-through")
            new = await gateway.grant(second, "click-through")
        finally:
            await store.close()
        return old.id, new.id

    return asyncio.run(main())


def ended_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "capport.gateway"
        and record.getMessage().startswith("Ended session")
    ]


def test_regrant_same_device_logs_replacement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "capport.gateway")
    old, new = grant_twice(tmp_path, A, A)
    assert old != new
    assert ended_lines(caplog) == [f"Ended session {old} of {A}: replaced."]


def test_replacement_line_has_session_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "capport.gateway")
    old, _ = grant_twice(tmp_path, A, A)
    [record] = [r for r in caplog.records if r.getMessage().startswith("Ended")]
    assert record.session == old
    assert record.mac == A.mac


def test_grant_to_other_mac_logs_replacement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "capport.gateway")
    old, _ = grant_twice(tmp_path, A, B_AT_A_IP)
    assert ended_lines(caplog) == [f"Ended session {old} of {A}: replaced."]
