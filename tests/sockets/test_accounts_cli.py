"""`capport users` and `capport vouchers` against a gateway on a real Unix socket.

The gateway is a real Gateway and SQLite store with the in-memory firewall,
served by uvicorn on a control socket in a thread, as the daemon serves it.
The command line runs in this process through click's runner, so the
socket's peer is this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import json
import logging
import os
import socket
import sqlite3
import stat
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from capport.auth.passwords import verify_password
from capport.auth.records import User, Voucher
from capport.auth.vouchers import ALPHABET
from capport.cli import main
from capport.control import bind_control_socket
from capport.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import serve_admin  # noqa: E402

PASSWORD = "socket-pw-41"


@dataclass
class Gateway:
    socket_path: Path
    store_path: Path

    def run(self, *args: str, stdin: str | None = None) -> Result:
        argv = [*args, "--socket", str(self.socket_path)]
        return CliRunner().invoke(main, argv, input=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        result = self.run(*args, stdin=stdin)
        assert result.exit_code == 0, result.output
        return result

    def users(self) -> list[User]:
        return asyncio.run(_read(self.store_path, "users"))

    def vouchers(self) -> list[Voucher]:
        return asyncio.run(_read(self.store_path, "vouchers"))


async def _read(path: Path, method_name: str) -> list:  # type: ignore[type-arg]
    store = SQLiteStore(path)
    await store.open()
    try:
        return await getattr(store, method_name)()  # type: ignore[no-any-return]
    finally:
        await store.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    socket_path = tmp_path / "control.sock"
    store_path = tmp_path / "store.db"
    sock = bind_control_socket(socket_path)
    with serve_admin(store_path, sock, require_token=False):
        yield Gateway(socket_path, store_path)
    sock.close()


def add_user(gateway: Gateway, name: str, *options: str) -> Result:
    return gateway.ok(
        "users", "add", name, "--password-stdin", *options, stdin=PASSWORD + "\n"
    )


def create_codes(gateway: Gateway, *options: str) -> list[str]:
    result = gateway.ok("vouchers", "create", "--duration", "1h", *options)
    return result.stdout.split()


# Users


def test_users_add_stores_hash(gateway: Gateway) -> None:
    result = add_user(gateway, "Alice", "--devices", "2")
    assert result.stdout == "Added user alice.\n"
    (user,) = gateway.users()
    assert user.name == "alice"
    assert user.max_devices == 2
    assert verify_password(user.password_hash, PASSWORD)


def test_users_add_prompts_twice(gateway: Gateway) -> None:
    result = gateway.ok("users", "add", "bob", stdin="pw-7\npw-7\n")
    assert "Added user bob." in result.stdout
    (user,) = gateway.users()
    assert verify_password(user.password_hash, "pw-7")


def test_users_add_existing_fails(gateway: Gateway) -> None:
    add_user(gateway, "alice")
    result = gateway.run("users", "add", "ALICE", "--password-stdin", stdin="b\n")
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_users_add_empty_password_fails(gateway: Gateway) -> None:
    result = gateway.run("users", "add", "alice", "--password-stdin", stdin="\n")
    assert result.exit_code == 2
    assert "the password is empty" in result.output
    assert gateway.users() == []


def test_users_passwd_replaces_hash(gateway: Gateway) -> None:
    add_user(gateway, "alice")
    result = gateway.ok("users", "passwd", "alice", "--password-stdin", stdin="new\n")
    assert result.stdout == "Changed the password of alice.\n"
    (user,) = gateway.users()
    assert verify_password(user.password_hash, "new")
    assert not verify_password(user.password_hash, PASSWORD)


def test_users_passwd_unknown_user_fails(gateway: Gateway) -> None:
    result = gateway.run("users", "passwd", "nobody", "--password-stdin", stdin="x\n")
    assert result.exit_code == 1
    assert "not found" in result.output


def test_users_remove_deletes_user(gateway: Gateway) -> None:
    add_user(gateway, "alice")
    result = gateway.ok("users", "remove", "alice")
    assert result.stdout == "Removed user alice.\n"
    assert gateway.users() == []


def test_users_remove_unknown_user_fails(gateway: Gateway) -> None:
    result = gateway.run("users", "remove", "nobody")
    assert result.exit_code == 1
    assert "not found" in result.output


def test_users_name_with_slash_round_trips(gateway: Gateway) -> None:
    add_user(gateway, "dept/alice")
    gateway.ok("users", "passwd", "dept/alice", "--password-stdin", stdin="n\n")
    gateway.ok("users", "remove", "dept/alice")
    assert gateway.users() == []


def test_users_list_json_omits_hashes(gateway: Gateway) -> None:
    add_user(gateway, "alice", "--devices", "2")
    rows = json.loads(gateway.ok("users", "list", "--json").stdout)
    assert [row["name"] for row in rows] == ["alice"]
    assert set(rows[0]) == {"name", "created", "max_devices"}
    assert rows[0]["max_devices"] == 2
    assert "argon2" not in json.dumps(rows)


def test_users_list_table(gateway: Gateway) -> None:
    add_user(gateway, "alice")
    result = gateway.ok("users", "list")
    (line,) = result.stdout.splitlines()
    assert line.startswith("alice\tcreated ")
    assert line.endswith("\tdevices unlimited")
    assert result.stderr == "1 user(s).\n"


# Vouchers


def test_vouchers_create_prints_codes(gateway: Gateway) -> None:
    result = gateway.ok("vouchers", "create", "--count", "3", "--duration", "2h")
    codes = result.stdout.split()
    assert len(codes) == 3
    for code in codes:
        assert len(code) == 11
        assert all(char in ALPHABET for char in code.replace("-", ""))
    assert result.stderr == "Created 3 voucher(s), ids 1 to 3.\n"
    vouchers = gateway.vouchers()
    assert [voucher.duration for voucher in vouchers] == [7200.0] * 3


def test_vouchers_create_stores_limits(gateway: Gateway) -> None:
    create_codes(gateway, "--quota", "500M", "--devices", "2", "--uses", "4")
    (voucher,) = gateway.vouchers()
    assert voucher.quota_bytes == 500_000_000
    assert voucher.max_devices == 2
    assert voucher.max_uses == 4


def test_vouchers_create_splits_large_count(gateway: Gateway, tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    codes = create_codes(gateway, "--count", "1001", "--csv", str(target))
    assert len(set(codes)) == 1001
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["code"] for row in rows] == codes
    assert [int(row["id"]) for row in rows] == list(range(1, 1002))
    assert len(gateway.vouchers()) == 1001


def test_vouchers_create_keeps_codes_of_partial_run(
    gateway: Gateway, tmp_path: Path
) -> None:
    # The trigger makes the gateway's store reject the second request's rows.
    with contextlib.closing(sqlite3.connect(gateway.store_path)) as db:
        db.execute(
            "CREATE TRIGGER stop_vouchers BEFORE INSERT ON vouchers "
            "WHEN (SELECT count(*) FROM vouchers) >= 1000 "
            "BEGIN SELECT RAISE(ABORT, 'voucher limit of the test'); END"
        )
        db.commit()
    target = tmp_path / "codes.csv"
    result = gateway.run(
        "vouchers", "create", "--duration", "1h", "--count", "1500",
        "--csv", str(target),
    )  # fmt: skip
    assert result.exit_code == 1
    codes = result.stdout.split()
    assert len(codes) == 1000
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["code"] for row in rows] == codes
    assert "Created only 1000 of 1500 voucher(s), ids 1 to 1000." in result.stderr
    assert "Error: the gateway could not do this" in result.stderr
    assert len(gateway.vouchers()) == 1000


def test_vouchers_create_writes_private_csv(gateway: Gateway, tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    codes = create_codes(
        gateway, "--count", "2", "--quota", "1k", "--csv", str(target), "--force"
    )
    with target.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["code"] for row in rows] == codes
    assert rows[0]["duration_seconds"] == "3600"
    assert rows[0]["quota_bytes"] == "1000"
    assert rows[0]["max_devices"] == "1"
    assert rows[0]["max_uses"] == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_vouchers_unwritable_csv_creates_nothing(
    gateway: Gateway, tmp_path: Path
) -> None:
    target = tmp_path / "missing-dir" / "codes.csv"
    result = gateway.run("vouchers", "create", "--duration", "1h", "--csv", str(target))
    assert result.exit_code == 1
    assert "no vouchers were created" in result.output
    assert gateway.vouchers() == []


def test_vouchers_list_json(gateway: Gateway) -> None:
    create_codes(gateway, "--uses", "3")
    (row,) = json.loads(gateway.ok("vouchers", "list", "--json").stdout)
    assert row["id"] == 1
    assert row["state"] == "unused"
    assert row["max_uses"] == 3
    assert "code" not in row


def test_vouchers_list_table(gateway: Gateway) -> None:
    create_codes(gateway, "--uses", "3")
    result = gateway.ok("vouchers", "list")
    (line,) = result.stdout.splitlines()
    assert line == "1\tunused\tuses 0/3\tdevices 1\t3600 s\tfirst used -"
    assert result.stderr == "1 voucher(s).\n"


def test_vouchers_revoke_by_code_and_id(gateway: Gateway) -> None:
    first, _ = create_codes(gateway, "--count", "2")
    typed = first.lower().replace("-", "")
    result = gateway.ok("vouchers", "revoke", typed, "2")
    assert result.stdout == "Revoked voucher 1.\nRevoked voucher 2.\n"
    rows = json.loads(gateway.ok("vouchers", "list", "--json").stdout)
    assert [row["state"] for row in rows] == ["revoked", "revoked"]


def test_vouchers_revoke_unknown_code_fails(gateway: Gateway) -> None:
    create_codes(gateway)
    result = gateway.run("vouchers", "revoke", "ZZZZZ-ZZZZZ")
    assert result.exit_code == 1
    assert "no voucher has this code" in result.output


def test_vouchers_revoke_unknown_id_fails(gateway: Gateway) -> None:
    result = gateway.run("vouchers", "revoke", "42")
    assert result.exit_code == 1
    assert "voucher 42 not found" in result.output


def test_vouchers_export_prints_csv(gateway: Gateway) -> None:
    codes = create_codes(gateway, "--count", "2")
    result = gateway.ok("vouchers", "export")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["id"], row["state"]) for row in rows] == [
        ("1", "unused"),
        ("2", "unused"),
    ]
    assert all(code not in result.stdout for code in codes)
    assert result.stderr == "Exported 2 voucher(s).\n"


def test_vouchers_export_writes_private_file(gateway: Gateway, tmp_path: Path) -> None:
    create_codes(gateway)
    target = tmp_path / "vouchers.csv"
    result = gateway.ok("vouchers", "export", "--csv", str(target))
    assert result.stdout == ""
    assert target.read_text().startswith("id,state,duration_seconds,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# The audit log


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "capport.audit"]


def test_changes_are_audited_with_peer_uid(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        add_user(gateway, "alice")
        gateway.ok("users", "passwd", "alice", "--password-stdin", stdin="n-pw\n")
        gateway.ok("users", "remove", "alice")
        (code,) = create_codes(gateway)
        gateway.ok("vouchers", "revoke", code)
        gateway.ok("users", "list")
        gateway.ok("vouchers", "export")
    actor = f"control socket (uid {os.getuid()}, pid {os.getpid()})"
    assert audit_lines(caplog) == [
        f"{actor}: added user alice (device limit from auth.user_max_devices).",
        f"{actor}: changed the password of user alice.",
        f"{actor}: removed user alice.",
        f"{actor}: created 1 voucher(s), ids 1 to 1, 3600 s each.",
        f"{actor}: revoked voucher 1 (given by code).",
    ]


def test_audit_names_user_device_limit(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        add_user(gateway, "bob", "--devices", "2")
    assert audit_lines(caplog)[0].endswith(": added user bob (device limit 2).")


def test_passwords_and_codes_stay_out_of_logs(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        add_user(gateway, "alice")
        gateway.ok("users", "passwd", "alice", "--password-stdin", stdin="n-pw-93\n")
        (code,) = create_codes(gateway)
        gateway.ok("vouchers", "revoke", code)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert PASSWORD not in text
    assert "n-pw-93" not in text
    assert code not in text
    assert code.replace("-", "") not in text


# No gateway running


def run_without_gateway(*argv: str) -> tuple[int, str]:
    """Run the command line against a socket that no gateway serves.

    NOTE: httpcore 1.0.9's synchronous Unix socket connect leaves the socket
    open when connect() fails, and the error's traceback keeps it alive.
    The result is dropped and the socket collected here, with its
    ResourceWarning ignored, so no later test reports it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = CliRunner().invoke(main, list(argv))
        exit_code, output = result.exit_code, result.output
        del result
        gc.collect()
    return exit_code, output


def test_missing_socket_names_socket_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    exit_code, output = run_without_gateway("users", "list", "--socket", str(path))
    assert exit_code == 1
    assert f"control socket {path}" in output
    assert "the gateway is not running" in output
    assert "`capport run`" in output
    assert "--store PATH" in output


def test_stale_socket_says_no_gateway_listens(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    exit_code, output = run_without_gateway(
        "vouchers", "create", "--duration", "1h", "--socket", str(path)
    )
    assert exit_code == 1
    assert "no gateway is listening on it" in output
    assert "--store PATH" in output


def test_socket_from_config_file(gateway: Gateway, tmp_path: Path) -> None:
    config = tmp_path / "capport.toml"
    config.write_text(
        '[gateway]\ninterface = "lo"\n[portal]\naddress = "127.0.0.1"\n'
        f'[control]\nsocket = "{gateway.socket_path}"\n'
    )
    add_user(gateway, "alice")
    result = CliRunner().invoke(main, ["users", "list", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("alice\t")


def test_store_and_socket_together_fail(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "users",
            "list",
            "--store",
            str(tmp_path / "store.db"),
            "--socket",
            str(tmp_path / "control.sock"),
        ],
    )
    assert result.exit_code == 2
    assert "--store and --socket exclude each other" in result.output
    assert not (tmp_path / "store.db").exists()


def test_missing_gateway_fails_before_prompt(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    exit_code, output = run_without_gateway(
        "users", "add", "alice", "--socket", str(path)
    )
    assert exit_code == 1
    assert "Password" not in output
    assert "the gateway is not running" in output
