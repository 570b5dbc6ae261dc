"""Accounting records in the SQLite store: adding, querying and pruning."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from capport.acct.records import AccountingRecord
from capport.store.sqlite import SQLiteStore

T = TypeVar("T")
DAY = 86400.0


def record(session_id: int, started: float, ended: float) -> AccountingRecord:
    return AccountingRecord(
        session_id, "02:00:00:00:00:11", "192.0.2.11", "click-through", None,
        started, ended, 100, 0, "expired",
    )  # fmt: skip


def on_store(path: Path, work: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    async def scenario() -> T:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(scenario())


def test_record_round_trip(tmp_path: Path) -> None:
    async def work(store: SQLiteStore) -> list[AccountingRecord]:
        await store.add_accounting_record(record(1, 10, 20))
        return await store.accounting_records(0, 100)

    assert on_store(tmp_path / "s.db", work) == [record(1, 10, 20)]


def test_records_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    on_store(path, lambda store: store.add_accounting_record(record(1, 10, 20)))
    found = on_store(path, lambda store: store.accounting_records(0, 100))
    assert [r.session_id for r in found] == [1]


def test_same_session_replaced(tmp_path: Path) -> None:
    async def work(store: SQLiteStore) -> list[AccountingRecord]:
        await store.add_accounting_record(record(1, 10, 20))
        await store.add_accounting_record(record(1, 10, 25))
        return await store.accounting_records(0, 100)

    assert [r.ended_at for r in on_store(tmp_path / "s.db", work)] == [25]


def test_query_selects_overlapping_sessions(tmp_path: Path) -> None:
    async def work(store: SQLiteStore) -> list[AccountingRecord]:
        await store.add_accounting_record(record(1, 0, 9))  # ends before
        await store.add_accounting_record(record(2, 5, 15))  # overlaps start
        await store.add_accounting_record(record(3, 12, 18))  # inside
        await store.add_accounting_record(record(4, 19, 30))  # overlaps end
        await store.add_accounting_record(record(5, 20, 30))  # starts at end
        return await store.accounting_records(10, 20)

    assert [r.session_id for r in on_store(tmp_path / "s.db", work)] == [2, 3, 4]


def test_prune_removes_only_old(tmp_path: Path) -> None:
    async def work(store: SQLiteStore) -> tuple[int, list[AccountingRecord]]:
        await store.add_accounting_record(record(1, 0, DAY))
        await store.add_accounting_record(record(2, 0, 3 * DAY))
        removed = await store.prune_accounting(2 * DAY)
        return removed, await store.accounting_records(0, 10 * DAY)

    removed, left = on_store(tmp_path / "s.db", work)
    assert removed == 1
    assert [r.session_id for r in left] == [2]
