"""The accounting recorder as an observer of a gateway with a real SQLite store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from capport.acct import recorder as recorder_module
from capport.acct.recorder import AccountingRecorder
from capport.acct.records import AccountingRecord
from capport.enforce.base import MemoryEnforcer, Traffic
from capport.gateway import Clocks, Gateway
from capport.models import Device, EndReason
from capport.neighbours import MemoryNeighbours
from capport.store.sqlite import SQLiteStore

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")
DAY = 86400.0


@dataclass(frozen=True)
class Count:
    bytes: int


class Clock:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0
        self.boot = 500.0

    def clocks(self) -> Clocks:
        return Clocks(
            wall=lambda: self.wall,
            monotonic=lambda: self.mono,
            boot=lambda: self.boot,
            boot_id=lambda: "boot-1",
        )

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
        self.boot += seconds


class Counters:
    """The kernel's per-device counters, as a test sets them."""

    def __init__(self) -> None:
        self.values: dict[Device, Count] = {}
        self.reads = 0

    def __call__(self) -> dict[Device, Count]:
        self.reads += 1
        return dict(self.values)


class Bench:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.counters = Counters()
        self.store = SQLiteStore(tmp_path / "s.db")
        neighbours = MemoryNeighbours({A.ip: A.mac, B.ip: B.mac})
        self.gateway = Gateway(
            self.store, MemoryEnforcer(), neighbours, 600, self.clock.clocks()
        )
        self.traffic: dict[Device, Traffic] = {}
        self.recorder = AccountingRecorder(
            self.store,
            90 * DAY,
            counters=self.counters,
            usage=lambda session: self.traffic.get(session.device, Traffic()),
            wall=lambda: self.clock.wall,
            monotonic=lambda: self.clock.mono,
        )
        self.gateway.add_observer(self.recorder)

    async def open(self) -> None:
        await self.store.open()
        await self.gateway.start()

    async def records(self) -> list[AccountingRecord]:
        await self.recorder.close()
        return await self.store.accounting_records(0, self.clock.wall + DAY)

    async def close(self) -> None:
        await self.recorder.close()
        await self.store.close()


def run(tmp_path: Path, scenario) -> list[AccountingRecord]:  # type: ignore[no-untyped-def]
    async def main() -> list[AccountingRecord]:
        bench = Bench(tmp_path)
        await bench.open()
        try:
            await scenario(bench)
            return await bench.records()
        finally:
            await bench.close()

    return asyncio.run(main())


def test_revoked_session_recorded(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        bench.clock.advance(120)
        bench.counters.values[A] = Count(5000)
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)

    [record] = run(tmp_path, scenario)
    assert record.mac == A.mac
    assert record.method == "click-through"
    assert record.duration == 120
    assert record.bytes_up == 5000
    assert record.end_reason == "revoked"


def test_expired_session_recorded(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        bench.clock.advance(601)
        await bench.gateway.expire_due()

    [record] = run(tmp_path, scenario)
    assert record.end_reason == "expired"


def test_expired_while_down_ends_at_expiry(tmp_path: Path) -> None:
    async def main() -> list[AccountingRecord]:
        first = Bench(tmp_path)
        await first.open()
        await first.gateway.grant(A, "click-through")
        await first.close()
        second = Bench(tmp_path)
        second.clock.advance(645)
        await second.open()
        try:
            return await second.records()
        finally:
            await second.close()

    [record] = asyncio.run(main())
    assert record.end_reason == "expired"
    assert record.duration == 600


def test_pass_bytes_kept_after_kernel_drop(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        # The last accounting pass counted 700 bytes; then the kernel's
        # element timed out, taking its counter with it.
        bench.traffic[A] = Traffic(up=700, down=0)
        bench.clock.advance(601)
        await bench.gateway.expire_due()

    [record] = run(tmp_path, scenario)
    assert record.bytes_up == 700


def test_endings_share_one_counter_read(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        await bench.gateway.grant(B, "click-through")
        bench.clock.advance(601)
        reads_before = bench.counters.reads
        await bench.gateway.expire_due()
        assert bench.counters.reads - reads_before == 1

    assert len(run(tmp_path, scenario)) == 2


def test_fresh_count_beats_older_pass(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        bench.traffic[A] = Traffic(up=700, down=0)
        bench.counters.values[A] = Count(900)
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)

    [record] = run(tmp_path, scenario)
    assert record.bytes_up == 900


def test_received_bytes_from_gateway_usage(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        bench.traffic[A] = Traffic(up=300, down=8000)
        bench.counters.values[A] = Count(450)
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)

    [record] = run(tmp_path, scenario)
    assert record.bytes_down == 8000
    assert record.bytes_up == 450


def test_active_session_not_recorded(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")

    assert run(tmp_path, scenario) == []


def test_prune_keeps_recent_records(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)
        await bench.recorder.close()
        bench.clock.advance(91 * DAY)
        await bench.gateway.grant(B, "click-through")
        await bench.gateway.revoke_mac(B.mac, EndReason.REVOKED)
        await bench.recorder.close()
        assert await bench.recorder.prune() == 1

    [record] = run(tmp_path, scenario)
    assert record.mac == B.mac


def test_run_prunes_at_start(tmp_path: Path) -> None:
    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)
        await bench.recorder.close()
        bench.clock.advance(91 * DAY)
        task = asyncio.create_task(bench.recorder.run(interval=0.01))
        await asyncio.sleep(0.05)
        task.cancel()

    assert run(tmp_path, scenario) == []


def test_counter_snapshot_dropped_after_max_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "COUNTERS_MAX_AGE", 0.05)

    async def scenario(bench: Bench) -> None:
        await bench.gateway.grant(A, "click-through")
        await bench.gateway.grant(B, "click-through")
        bench.counters.values[A] = Count(5000)
        await bench.gateway.revoke_mac(A.mac, EndReason.REVOKED)
        reads_before = bench.counters.reads
        # The test's monotonic clock does not advance, so only the drop makes
        # the next ending read the counters again.
        await asyncio.sleep(0.2)
        snapshot = bench.recorder._snapshot
        await bench.gateway.revoke_mac(B.mac, EndReason.REVOKED)
        assert snapshot == {}
        assert bench.counters.reads - reads_before == 1

    assert len(run(tmp_path, scenario)) == 2
