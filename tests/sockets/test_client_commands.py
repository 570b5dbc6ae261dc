"""`capport check` and `capport login` against loopback probes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_client_portals import PortalServer, running_portal_server

from capport.client.commands import check, login

PROBE_OPTIONS = ["--expect-body", "probe-ok", "--no-api", "--probe-timeout", "2"]


@pytest.fixture
def portal_server() -> Iterator[PortalServer]:
    with running_portal_server() as server:
        yield server


def run_check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(check, list(args))
    return result.exit_code, result.output


def test_check_online(portal_server: PortalServer) -> None:
    portal_server.is_open = True
    code, output = run_check("--probe-url", portal_server.url("/probe"), *PROBE_OPTIONS)
    assert code == 0
    assert output.startswith("online:")


def test_check_captive_prints_portal(portal_server: PortalServer) -> None:
    code, output = run_check("--probe-url", portal_server.url("/probe"), *PROBE_OPTIONS)
    assert code == 1
    assert output.startswith(f"captive: log in at {portal_server.portal_url}")


def test_check_redirect_portal(portal_server: PortalServer) -> None:
    url = portal_server.url("/redirect")
    code, output = run_check("--probe-url", url, *PROBE_OPTIONS)
    assert code == 1
    assert portal_server.portal_url in output


def test_check_unexpected_answer_limited(portal_server: PortalServer) -> None:
    code, output = run_check("--probe-url", portal_server.url("/503"), *PROBE_OPTIONS)
    assert code == 2
    assert output.startswith("limited:")
    assert "got 503 where 200 was expected" in output


def test_check_refused_connection_limited() -> None:
    # A port that was just free: nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, output = run_check("--probe-url", f"http://127.0.0.1:{port}/", "--no-api")
    assert code == 2
    assert "Connection refused" in output


def test_check_json(portal_server: PortalServer) -> None:
    url = portal_server.url("/probe")
    code, output = run_check("--probe-url", url, *PROBE_OPTIONS, "--json")
    data = json.loads(output)
    assert code == 1
    assert data["state"] == "captive"
    assert data["exit_code"] == 1
    assert data["portal_url"] == portal_server.portal_url
    assert data["detected_by"] == "status-511"


def test_check_expect_status_only(portal_server: PortalServer) -> None:
    portal_server.is_open = True
    url = portal_server.url("/probe")
    code, _ = run_check("--probe-url", url, "--expect-status", "200", "--no-api")
    assert code == 0


def test_check_reads_api_uri_from_lease(
    portal_server: PortalServer, tmp_path: Path
) -> None:
    lease = tmp_path / "leases"
    lease.write_text("CAPTIVE_PORTAL=https://127.0.0.1:1/api\n")
    portal_server.is_open = True
    url = portal_server.url("/probe")
    code, output = run_check(
        "--probe-url", url, "--expect-body", "probe-ok", "--lease-file", str(lease),
        "--probe-timeout", "2", "--json",
    )  # fmt: skip
    data = json.loads(output)
    assert code == 0
    assert data["api_uri"] == "https://127.0.0.1:1/api"
    assert "The API gave no state" in data["detail"]


@pytest.mark.parametrize(
    "args",
    [
        ["--probe-url", "ftp://example.test/"],
        ["--expect-status", "99"],
        ["--probe-timeout", "0"],
        ["--no-such-option"],
    ],
)
def test_check_usage_errors_exit_4(args: list[str]) -> None:
    code, _ = run_check(*args)
    assert code == 4


def test_check_help_lists_exit_codes() -> None:
    code, output = run_check("--help")
    assert code == 0
    for line in ("0  online", "1  captive", "2  limited", "3  offline", "4  invalid"):
        assert line in output


def test_login_already_online(portal_server: PortalServer) -> None:
    portal_server.is_open = True
    url = portal_server.url("/probe")
    result = CliRunner().invoke(login, ["--probe-url", url, *PROBE_OPTIONS])
    assert result.exit_code == 0
    assert "already open" in result.output


def test_login_waits_for_open_network(portal_server: PortalServer) -> None:
    timer = threading.Timer(0.5, setattr, (portal_server, "is_open", True))
    timer.start()
    url = portal_server.url("/probe")
    args = ["--probe-url", url, *PROBE_OPTIONS, "--timeout", "10", "--interval", "0.2"]
    result = CliRunner().invoke(login, args)
    timer.cancel()
    assert result.exit_code == 0, result.output
    assert f"Log in at: {portal_server.portal_url}" in result.output
    assert "online: the network opened after" in result.output


def test_login_times_out(portal_server: PortalServer) -> None:
    url = portal_server.url("/probe")
    args = ["--probe-url", url, *PROBE_OPTIONS, "--timeout", "0.5", "--interval", "0.2"]
    result = CliRunner().invoke(login, args)
    assert result.exit_code == 1
    assert "did not open within 0.5 s" in result.output
