"""`capport accounting export` against a store file of its own."""

from __future__ import annotations

import asyncio
import csv
import io
import stat
from pathlib import Path

from click.testing import CliRunner

from capport.acct.records import AccountingRecord
from capport.cli import main
from capport.store.sqlite import SQLiteStore

DAY = 86400.0
# 2026-12-01T00:00:00Z and the two days after it.
DEC_1 = 1_796_083_200.0


def record(session_id: int, started: float) -> AccountingRecord:
    return AccountingRecord(
        session_id, "02:00:00:00:00:11", "192.0.2.11", "voucher", "4",
        started, started + 3600, 10, 0, "expired",
    )  # fmt: skip


def make_store(path: Path) -> Path:
    async def fill() -> None:
        store = SQLiteStore(path)
        await store.open()
        for number in range(3):
            await store.add_accounting_record(record(number + 1, DEC_1 + number * DAY))
        await store.close()

    asyncio.run(fill())
    return path


def export(store: Path, *options: str) -> tuple[int, str, str]:
    runner = CliRunner()
    argv = ["accounting", "export", "--store", str(store), *options]
    result = runner.invoke(main, argv)
    return result.exit_code, result.stdout, result.stderr


def sessions(text: str) -> list[str]:
    return [row[0] for row in csv.reader(io.StringIO(text))][1:]


def test_export_all_to_stdout(tmp_path: Path) -> None:
    code, out, err = export(make_store(tmp_path / "s.db"))
    assert code == 0
    assert sessions(out) == ["1", "2", "3"]
    assert "Exported 3 accounting record(s)." in err


def test_export_period(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.db")
    code, out, _ = export(store, "--since", "2026-12-02", "--until", "2026-12-03")
    assert code == 0
    assert sessions(out) == ["2"]


def test_export_to_private_file(tmp_path: Path) -> None:
    target = tmp_path / "acct.csv"
    code, out, _ = export(make_store(tmp_path / "s.db"), "--csv", str(target))
    assert code == 0
    assert out == ""
    assert sessions(target.read_text()) == ["1", "2", "3"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_export_invalid_since(tmp_path: Path) -> None:
    code, _, err = export(make_store(tmp_path / "s.db"), "--since", "last week")
    assert code == 2
    assert "invalid time 'last week'" in err


def test_export_until_before_since(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s.db")
    code, _, err = export(store, "--since", "2026-12-03", "--until", "2026-12-02")
    assert code == 2
    assert "--until must be later than --since" in err
