"""The admin API on real sockets: schemathesis over TCP, the CLI over Unix."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from capport.cli import main
from capport.control import bind_control_socket
from capport.models import Device

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import Served, serve_admin  # noqa: E402

MAC = "02:00:00:00:00:11"
IP = "192.0.2.11"
DEVICE = Device.parse(MAC, IP)
SCHEMATHESIS = Path(sys.executable).with_name("st")


@pytest.fixture
def tcp_admin(tmp_path: Path) -> Iterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    with serve_admin(tmp_path / "store.db", sock) as served:
        yield served
    sock.close()


@pytest.fixture
def socket_admin(tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    path = tmp_path / "control.sock"
    sock = bind_control_socket(path)
    with serve_admin(tmp_path / "store.db", sock, require_token=False) as served:
        yield served, path
    sock.close()


def cli(socket_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--socket", str(socket_path)])
    return result.exit_code, result.output


def run_schemathesis(
    url: str, tmp_path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """Run schemathesis on the schema at url, reporting only 5xx responses."""
    if not SCHEMATHESIS.exists():
        pytest.skip("schemathesis is not installed; pip install '.[test]'")
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/api/v1/openapi.json",
            *options,
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--seed",
            "20261204",
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
        cwd=tmp_path,
    )


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_errors(tcp_admin: Served, tmp_path: Path) -> None:
    """Generated requests, valid and invalid, never get a 5xx."""
    result = run_schemathesis(
        tcp_admin.url, tmp_path, "--header", f"Authorization: Bearer {tcp_admin.token}"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Test cases:" in result.stdout


@pytest.mark.timeout(240)
def test_schemathesis_token_routes_without_token(tmp_path: Path) -> None:
    """The token routes as the control socket serves them never return a 5xx.

    The socket's application is served on 127.0.0.1 here, because
    schemathesis cannot reach a Unix socket, so no token is needed.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    with serve_admin(tmp_path / "store.db", sock, require_token=False) as served:
        result = run_schemathesis(served.url, tmp_path, "--include-tag", "tokens")
    sock.close()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # GET and POST /tokens, DELETE /tokens/{id} and POST /tokens/revoke.
    assert "Tested: 4" in result.stdout


def test_schema_is_served_with_token(tcp_admin: Served) -> None:
    headers = {"Authorization": f"Bearer {tcp_admin.token}"}
    response = httpx.get(f"{tcp_admin.url}/api/v1/openapi.json", headers=headers)
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "capport admin API"


def test_cli_grant_authorises_device(socket_admin: tuple[Served, Path]) -> None:
    served, path = socket_admin
    status, output = cli(path, "grant", MAC, IP, "--duration", "10m")
    assert status == 0, output
    assert f"Granted {MAC} at {IP}" in output
    assert served.enforcer.devices == {DEVICE: 600}


def test_cli_extend_moves_deadline(socket_admin: tuple[Served, Path]) -> None:
    served, path = socket_admin
    cli(path, "grant", MAC, IP, "--duration", "600")
    status, output = cli(path, "extend", MAC, "5m")
    assert status == 0, output
    assert 899 <= served.enforcer.devices[DEVICE] <= 900


def test_cli_clients_lists_grant(socket_admin: tuple[Served, Path]) -> None:
    _, path = socket_admin
    cli(path, "grant", MAC, IP)
    status, output = cli(path, "clients", "--json")
    assert status == 0, output
    rows = json.loads(output)
    assert [(row["mac"], row["method"]) for row in rows] == [(MAC, "admin")]


def test_cli_revoke_cuts_device_off(socket_admin: tuple[Served, Path]) -> None:
    served, path = socket_admin
    cli(path, "grant", MAC, IP)
    status, output = cli(path, "revoke", MAC)
    assert status == 0, output
    assert f"Revoked {MAC} at {IP}" in output
    assert served.enforcer.devices == {}


def test_cli_revoke_unknown_mac_fails(socket_admin: tuple[Served, Path]) -> None:
    _, path = socket_admin
    status, output = cli(path, "revoke", MAC)
    assert status == 1
    assert "no authorised device" in output


def test_cli_grant_invalid_ip_names_field(socket_admin: tuple[Served, Path]) -> None:
    _, path = socket_admin
    status, output = cli(path, "grant", MAC, "192.0.2.999")
    assert status == 1
    assert "ip: invalid IPv4 address" in output


def test_cli_grant_broadcast_mac_fails(socket_admin: tuple[Served, Path]) -> None:
    served, path = socket_admin
    status, output = cli(path, "grant", "FF-FF-FF-FF-FF-FF", IP)
    assert status == 1
    assert "mac: MAC address ff:ff:ff:ff:ff:ff is a multicast or broadcast" in output
    assert served.enforcer.devices == {}


def test_cli_grant_broadcast_ip_fails(socket_admin: tuple[Served, Path]) -> None:
    served, path = socket_admin
    status, output = cli(path, "grant", MAC, "192.0.2.255")
    assert status == 1
    assert "ip: 192.0.2.255 is the broadcast address of 192.0.2.0/24" in output
    assert served.enforcer.devices == {}


def test_socket_keeps_earlier_control_paths(
    socket_admin: tuple[Served, Path],
) -> None:
    _, path = socket_admin
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://capport") as client:
        assert client.get("/v1/clients").json() == {"clients": []}
        assert client.delete(f"/v1/clients/{MAC}").status_code == 404
