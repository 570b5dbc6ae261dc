"""CSV files of `capport vouchers`: never replaced unasked, codes never lost."""

from __future__ import annotations

import asyncio
import csv
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from capport.auth.records import Voucher
from capport.cli import main
from capport.store.sqlite import SQLiteStore

OLD_CODES = "id,code\n1,K7QXM-3HNPD\n"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "capport.db"


def run(store_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--store", str(store_path)])


def create(store_path: Path, target: Path, *options: str) -> Result:
    return run(
        store_path, "vouchers", "create", "--duration", "1h", "--csv", str(target),
        *options,
    )  # fmt: skip


def stored_vouchers(path: Path) -> list[Voucher]:
    async def read() -> list[Voucher]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.vouchers()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def full_device(tmp_path: Path) -> Path:
    """Return a character device like /dev/full: every write fails with ENOSPC."""
    path = tmp_path / "full"
    try:
        # 1:7 are the major and minor numbers of /dev/full on Linux.
        os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return path


def test_create_keeps_existing_csv(store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    target.write_text(OLD_CODES)
    result = create(store_path, target)
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert target.read_text() == OLD_CODES


def test_create_on_existing_csv_makes_no_vouchers(
    store_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "codes.csv"
    target.write_text(OLD_CODES)
    result = create(store_path, target)
    assert "no vouchers were created" in result.stderr
    assert result.stdout == ""
    assert stored_vouchers(store_path) == []


def test_create_with_force_replaces_csv(store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    target.write_text(OLD_CODES)
    target.chmod(0o644)
    result = create(store_path, target, "--force")
    assert result.exit_code == 0, result.output
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["code"] for row in rows] == result.stdout.split()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_create_on_full_device_prints_codes(
    store_path: Path, full_device: Path
) -> None:
    result = create(store_path, full_device, "--force")
    assert result.exit_code == 1
    (code,) = result.stdout.split()
    assert len(code) == 11
    assert len(stored_vouchers(store_path)) == 1


def test_create_on_full_device_names_error(store_path: Path, full_device: Path) -> None:
    result = create(store_path, full_device, "--force")
    assert f"cannot write {full_device}: No space left on device" in result.stderr
    assert "only copy" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_create_keeps_mode_of_device(store_path: Path, full_device: Path) -> None:
    create(store_path, full_device, "--force")
    assert stat.S_IMODE(full_device.stat().st_mode) == 0o644


def test_failed_create_removes_new_csv(store_path: Path, tmp_path: Path) -> None:
    store_path.write_bytes(b"not an SQLite database " * 100)
    target = tmp_path / "codes.csv"
    result = create(store_path, target)
    assert result.exit_code == 1
    assert not target.exists()


def test_export_keeps_existing_csv(store_path: Path, tmp_path: Path) -> None:
    run(store_path, "vouchers", "create", "--duration", "1h")
    target = tmp_path / "vouchers.csv"
    target.write_text(OLD_CODES)
    result = run(store_path, "vouchers", "export", "--csv", str(target))
    assert result.exit_code == 1
    assert "--force" in result.stderr
    assert target.read_text() == OLD_CODES


def test_export_on_full_device_names_error(store_path: Path, full_device: Path) -> None:
    run(store_path, "vouchers", "create", "--duration", "1h")
    result = run(store_path, "vouchers", "export", "--csv", str(full_device), "--force")
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert "Traceback" not in result.output
