"""`capport users` and `capport vouchers` on a store file."""

from __future__ import annotations

import asyncio
import csv
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from capport.auth.passwords import verify_password
from capport.auth.records import User, Voucher
from capport.auth.users import normalise_username
from capport.auth.vouchers import ALPHABET
from capport.cli import main
from capport.store.sqlite import SQLiteStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "capport.db"


def invoke(store_path: Path, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--store", str(store_path)], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def fail(store_path: Path, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--store", str(store_path)], input=stdin)
    assert result.exit_code != 0
    return result.output


def stored_users(path: Path) -> list[User]:
    async def read() -> list[User]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.users()
        finally:
            await store.close()

    return asyncio.run(read())


def stored_vouchers(path: Path) -> list[Voucher]:
    async def read() -> list[Voucher]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.vouchers()
        finally:
            await store.close()

    return asyncio.run(read())


# Users


def test_add_user_hashes_password(store_path: Path) -> None:
    invoke(store_path, "users", "add", "Alice", "--password-stdin", stdin="pw 1\n")
    (user,) = stored_users(store_path)
    assert user.name == "alice"
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "pw 1")


def test_add_user_prompts_twice(store_path: Path) -> None:
    output = invoke(store_path, "users", "add", "bob", stdin="pw\npw\n")
    assert "Added user bob." in output
    assert "pw" not in output.replace("Password", "")


def test_add_existing_user_fails(store_path: Path) -> None:
    invoke(store_path, "users", "add", "alice", "--password-stdin", stdin="a\n")
    output = fail(store_path, "users", "add", "ALICE", "--password-stdin", stdin="b\n")
    assert "already exists" in output


def test_empty_password_is_rejected(store_path: Path) -> None:
    output = fail(store_path, "users", "add", "alice", "--password-stdin", stdin="\n")
    assert "empty" in output
    assert stored_users(store_path) == []


def test_passwd_replaces_hash(store_path: Path) -> None:
    invoke(store_path, "users", "add", "alice", "--password-stdin", stdin="old\n")
    invoke(store_path, "users", "passwd", "alice", "--password-stdin", stdin="new\n")
    (user,) = stored_users(store_path)
    assert verify_password(user.password_hash, "new")
    assert not verify_password(user.password_hash, "old")


def test_remove_missing_user_fails(store_path: Path) -> None:
    assert "not found" in fail(store_path, "users", "remove", "nobody")


def test_list_users_omits_hashes(store_path: Path) -> None:
    invoke(
        store_path,
        "users",
        "add",
        "alice",
        "--password-stdin",
        "--devices",
        "2",
        stdin="pw\n",
    )
    rows = json.loads(invoke(store_path, "users", "list", "--json"))
    assert [row["name"] for row in rows] == ["alice"]
    assert rows[0]["max_devices"] == 2
    assert "argon2" not in json.dumps(rows)


@pytest.mark.parametrize("name", ["", "   ", "a b", "tab\there", "x" * 65])
def test_invalid_user_names(name: str) -> None:
    with pytest.raises(ValueError):
        normalise_username(name)


# Vouchers


def test_create_prints_codes(store_path: Path) -> None:
    output = invoke(
        store_path, "vouchers", "create", "--count", "3", "--duration", "2h"
    )
    codes = output.split()
    assert len(codes) == 3
    for code in codes:
        assert len(code) == 11
        assert all(char in ALPHABET for char in code.replace("-", ""))
    vouchers = stored_vouchers(store_path)
    assert [voucher.duration for voucher in vouchers] == [7200.0] * 3
    assert [voucher.max_devices for voucher in vouchers] == [1] * 3


def test_create_stores_limits(store_path: Path) -> None:
    invoke(
        store_path,
        "vouchers",
        "create",
        "--duration",
        "30m",
        "--quota",
        "500M",
        "--devices",
        "2",
        "--uses",
        "4",
    )
    (voucher,) = stored_vouchers(store_path)
    assert voucher.quota_bytes == 500_000_000
    assert voucher.max_devices == 2
    assert voucher.max_uses == 4


def test_store_keeps_no_code(store_path: Path) -> None:
    code = invoke(store_path, "vouchers", "create", "--duration", "1h").strip()
    # Closing the store checkpoints the WAL into the main file.
    data = b"".join(path.read_bytes() for path in store_path.parent.iterdir())
    assert code.encode() not in data
    assert code.replace("-", "").encode() not in data


def test_create_writes_private_csv(store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    output = invoke(
        store_path,
        "vouchers",
        "create",
        "--count",
        "2",
        "--duration",
        "1h",
        "--csv",
        str(target),
    )
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["code"] for row in rows] == output.split()
    assert rows[0]["duration_seconds"] == "3600"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_unwritable_csv_creates_nothing(store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "codes.csv"
    fail(store_path, "vouchers", "create", "--duration", "1h", "--csv", str(target))
    assert stored_vouchers(store_path) == []


@pytest.mark.parametrize("size", ["0", "-5", "1.5G", "12X"])
def test_invalid_quota_is_rejected(store_path: Path, size: str) -> None:
    fail(store_path, "vouchers", "create", "--duration", "1h", "--quota", size)


def test_revoke_by_code_and_id(store_path: Path) -> None:
    first, second = invoke(
        store_path, "vouchers", "create", "--count", "2", "--duration", "1h"
    ).split()
    invoke(store_path, "vouchers", "revoke", first.lower().replace("-", ""))
    invoke(store_path, "vouchers", "revoke", "2")
    rows = json.loads(invoke(store_path, "vouchers", "list", "--json"))
    assert [row["state"] for row in rows] == ["revoked", "revoked"]


def test_revoke_unknown_code_fails(store_path: Path) -> None:
    invoke(store_path, "vouchers", "create", "--duration", "1h")
    assert "no voucher has this code" in fail(
        store_path, "vouchers", "revoke", "ZZZZZ-ZZZZZ"
    )


def test_export_writes_private_csv(store_path: Path, tmp_path: Path) -> None:
    code = invoke(store_path, "vouchers", "create", "--duration", "1h").strip()
    invoke(store_path, "vouchers", "revoke", "1")
    target = tmp_path / "vouchers.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    invoke(store_path, "vouchers", "export", "--csv", str(target), "--force")
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["id"], row["state"]) for row in rows] == [("1", "revoked")]
    assert code not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_list_vouchers_table(store_path: Path) -> None:
    invoke(store_path, "vouchers", "create", "--duration", "90m", "--devices", "3")
    line = invoke(store_path, "vouchers", "list").strip()
    assert line == "1\tunused\tuses 0/unlimited\tdevices 3\t5400 s\tfirst used -"


@pytest.mark.parametrize(
    "argv",
    [
        ("users", "list"),
        ("users", "remove", "alice"),
        ("vouchers", "list"),
        ("vouchers", "revoke", "1"),
        ("tokens", "list"),
        ("tokens", "revoke", "monitoring"),
    ],
)
def test_offline_command_rejects_missing_store(
    store_path: Path, argv: tuple[str, ...]
) -> None:
    output = fail(store_path, *argv)
    assert f"store file {store_path} not found" in output
    assert not store_path.exists()
