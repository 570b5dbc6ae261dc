"""`capport tokens` and `capport accounting export` against a gateway on real sockets.

The gateway is a real Gateway and SQLite store with the in-memory firewall,
served by uvicorn on a control socket in a thread, as the daemon serves it.
A second server on 127.0.0.1 shares the store, as the daemon's TCP admin
listener does, so a token made through the socket can be tried there.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import logging
import os
import socket
import stat
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from capport.acct.records import AccountingRecord
from capport.admin.records import TOKEN_PREFIX, token_digest
from capport.cli import main
from capport.control import bind_control_socket
from capport.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import TOKEN_NAME, serve_admin  # noqa: E402

# The name of the token the control socket's server stores at its start.
SOCKET_TOKEN = "socket-ops"
DAY = 86400.0
# 2026-12-01T00:00:00Z
DEC_1 = 1_796_083_200.0


@dataclass
class Gateway:
    socket_path: Path
    store_path: Path
    tcp_url: str

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--socket", str(self.socket_path)])

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result

    def status_with(self, token: str) -> int:
        """Return the TCP listener's status for a request with token."""
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.get(f"{self.tcp_url}/api/v1/clients", headers=headers)
        return response.status_code


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    socket_path = tmp_path / "control.sock"
    store_path = tmp_path / "store.db"
    unix = bind_control_socket(socket_path)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    with (
        serve_admin(store_path, unix, require_token=False, token_name=SOCKET_TOKEN),
        serve_admin(store_path, tcp) as served,
    ):
        yield Gateway(socket_path, store_path, served.url)
    unix.close()
    tcp.close()


def stored_tokens(path: Path) -> dict[str, str]:
    """Return the store's token digests by name."""

    async def read() -> dict[str, str]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return {token.name: token.digest for token in await store.tokens()}
        finally:
            await store.close()

    return asyncio.run(read())


def add_records(path: Path) -> None:
    """Store three sessions of an hour, one a day from 2026-12-01."""

    async def fill() -> None:
        store = SQLiteStore(path)
        await store.open()
        try:
            for number in range(3):
                started = DEC_1 + number * DAY
                await store.add_accounting_record(
                    AccountingRecord(
                        number + 1, "02:00:00:00:00:11", "192.0.2.11", "voucher",
                        "4", started, started + 3600, 10, 20, "expired",
                    )
                )  # fmt: skip
        finally:
            await store.close()

    asyncio.run(fill())


def sessions(text: str) -> list[str]:
    return [row["session"] for row in csv.DictReader(io.StringIO(text))]


# Tokens


def test_tokens_create_prints_working_token(gateway: Gateway) -> None:
    result = gateway.ok("tokens", "create", "monitoring")
    token = result.stdout.strip()
    assert token.startswith(TOKEN_PREFIX)
    assert result.stderr.startswith("Created token monitoring (id ")
    assert stored_tokens(gateway.store_path)["monitoring"] == token_digest(token)
    assert gateway.status_with(token) == 200


def test_tokens_create_taken_name_fails(gateway: Gateway) -> None:
    result = gateway.run("tokens", "create", TOKEN_NAME)
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_tokens_create_invalid_name_fails(gateway: Gateway) -> None:
    result = gateway.run("tokens", "create", "no spaces")
    assert result.exit_code == 2
    assert "invalid token name" in result.output


def test_tokens_list_json_has_no_secrets(gateway: Gateway) -> None:
    token = gateway.ok("tokens", "create", "monitoring").stdout.strip()
    rows = json.loads(gateway.ok("tokens", "list", "--json").stdout)
    assert [row["name"] for row in rows] == ["monitoring", TOKEN_NAME, SOCKET_TOKEN]
    assert set(rows[0]) == {"id", "name", "created", "last_used"}
    text = json.dumps(rows)
    assert token not in text
    assert token_digest(token) not in text


def test_tokens_list_table(gateway: Gateway) -> None:
    gateway.ok("tokens", "create", "monitoring")
    result = gateway.ok("tokens", "list")
    first = result.stdout.splitlines()[0]
    assert first.split("\t")[1] == "monitoring"
    assert first.endswith("\tlast used never")
    assert result.stderr == "3 token(s).\n"


def test_tokens_revoke_by_name_stops_token(gateway: Gateway) -> None:
    token = gateway.ok("tokens", "create", "monitoring").stdout.strip()
    result = gateway.ok("tokens", "revoke", "monitoring")
    assert result.stdout.startswith("Revoked token monitoring (id ")
    assert "monitoring" not in stored_tokens(gateway.store_path)
    assert gateway.status_with(token) == 401


def test_tokens_revoke_by_id(gateway: Gateway) -> None:
    gateway.ok("tokens", "create", "monitoring")
    rows = json.loads(gateway.ok("tokens", "list", "--json").stdout)
    token_id = {row["name"]: row["id"] for row in rows}["monitoring"]
    result = gateway.ok("tokens", "revoke", "--id", str(token_id))
    assert result.stdout == f"Revoked token monitoring (id {token_id}).\n"
    assert list(stored_tokens(gateway.store_path)) == [TOKEN_NAME, SOCKET_TOKEN]


def test_tokens_revoke_unknown_fails(gateway: Gateway) -> None:
    result = gateway.run("tokens", "revoke", "ghost")
    assert result.exit_code == 1
    assert "API token 'ghost' not found" in result.output


@pytest.mark.parametrize(
    "args", [("revoke",), ("revoke", "ops", "--id", "1")], ids=["neither", "both"]
)
def test_tokens_revoke_needs_name_or_id(gateway: Gateway, args: tuple[str]) -> None:
    result = gateway.run("tokens", *args)
    assert result.exit_code == 2
    assert "give either a token NAME or --id" in result.output
    assert list(stored_tokens(gateway.store_path)) == [TOKEN_NAME, SOCKET_TOKEN]


def test_bearer_token_cannot_mint_tokens(gateway: Gateway) -> None:
    token = gateway.ok("tokens", "create", "monitoring").stdout.strip()
    response = httpx.post(
        f"{gateway.tcp_url}/api/v1/tokens",
        json={"name": "minted"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert "minted" not in stored_tokens(gateway.store_path)


def test_tokens_audited_with_peer_uid(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        token = gateway.ok("tokens", "create", "monitoring").stdout.strip()
        gateway.ok("tokens", "list")
        gateway.ok("tokens", "revoke", "monitoring")
    actor = f"control socket (uid {os.getuid()}, pid {os.getpid()})"
    lines = [r.getMessage() for r in caplog.records if r.name == "capport.audit"]
    assert len(lines) == 2
    assert lines[0].startswith(f"{actor}: created API token ")
    assert lines[0].endswith(" (monitoring).")
    assert lines[1].startswith(f"{actor}: revoked API token ")
    assert lines[1].endswith(" (monitoring, given by name).")
    assert token not in caplog.text


def test_tokens_store_mode_creates_first_token(tmp_path: Path) -> None:
    store_path = tmp_path / "new" / "store.db"
    argv = ["tokens", "create", "first", "--store", str(store_path)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert stored_tokens(store_path) == {"first": token_digest(token)}
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600


# Accounting export


def test_accounting_export_prints_csv(gateway: Gateway) -> None:
    add_records(gateway.store_path)
    result = gateway.ok("accounting", "export")
    assert sessions(result.stdout) == ["1", "2", "3"]
    assert result.stderr == "Exported 3 accounting record(s).\n"


def test_accounting_export_period(gateway: Gateway) -> None:
    add_records(gateway.store_path)
    result = gateway.ok(
        "accounting", "export", "--since", "2026-12-02", "--until", "2026-12-03"
    )
    assert sessions(result.stdout) == ["2"]
    assert result.stderr == "Exported 1 accounting record(s).\n"


def test_accounting_export_duration_ago(gateway: Gateway) -> None:
    add_records(gateway.store_path)
    result = gateway.ok("accounting", "export", "--since", "1h")
    assert sessions(result.stdout) == []
    assert result.stderr == "Exported 0 accounting record(s).\n"


def test_accounting_export_writes_private_file(
    gateway: Gateway, tmp_path: Path
) -> None:
    add_records(gateway.store_path)
    target = tmp_path / "acct.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    result = gateway.ok("accounting", "export", "--csv", str(target))
    assert result.stdout == ""
    assert sessions(target.read_text()) == ["1", "2", "3"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_accounting_export_invalid_since(gateway: Gateway) -> None:
    result = gateway.run("accounting", "export", "--since", "last week")
    assert result.exit_code == 2
    assert "invalid time 'last week'" in result.output


def test_accounting_store_mode_reads_file(gateway: Gateway) -> None:
    add_records(gateway.store_path)
    argv = ["accounting", "export", "--store", str(gateway.store_path)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert sessions(result.stdout) == ["1", "2", "3"]


def test_accounting_store_mode_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    result = CliRunner().invoke(main, ["accounting", "export", "--store", str(path)])
    assert result.exit_code == 1
    assert f"store file {path} not found" in result.output
    assert not path.exists()


# No gateway running


def run_without_gateway(*argv: str) -> tuple[int, str]:
    """Run the command line against a socket that no gateway serves.

    NOTE: httpcore 1.0.9's synchronous Unix socket connect leaves the socket
    open when connect() fails, so its ResourceWarning is ignored and the
    socket collected here, as in test_accounts_cli.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = CliRunner().invoke(main, list(argv))
        exit_code, output = result.exit_code, result.output
        del result
        gc.collect()
    return exit_code, output


@pytest.mark.parametrize(
    "argv",
    [("tokens", "create", "ops"), ("tokens", "list"), ("accounting", "export")],
    ids=["tokens-create", "tokens-list", "accounting-export"],
)
def test_missing_gateway_names_socket(tmp_path: Path, argv: tuple[str, ...]) -> None:
    path = tmp_path / "control.sock"
    exit_code, output = run_without_gateway(*argv, "--socket", str(path))
    assert exit_code == 1
    assert f"control socket {path}" in output
    assert "the gateway is not running" in output
    assert "--store PATH" in output
