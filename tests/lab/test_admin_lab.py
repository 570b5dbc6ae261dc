"""The admin API of a running gateway in the laboratory, with real nftables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from clients import capport, is_captive, is_online, kernel_elements, revoke_quietly
from netns import wait_until

from capport.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

ADMIN_URL = "http://127.0.0.1:8512/api/v1"


@pytest.fixture
def token(lab: Lab) -> Iterator[str]:
    """A bearer token of the laboratory's gateway, revoked afterwards."""
    name = f"lab-{os.getpid()}"
    result = capport("tokens", "create", name, "--store", str(lab.store_path))
    assert result.returncode == 0, result.stderr
    yield result.stdout.strip()
    capport("tokens", "revoke", name, "--store", str(lab.store_path))


def admin_request(
    lab: Lab, token: str, method: str, path: str, body: object = None
) -> tuple[int, dict[str, object]]:
    """Send one request to the admin listener inside the gateway's namespace."""
    argv = [
        "curl", "-sS", "--max-time", "10", "--request", method,
        "--header", f"Authorization: Bearer {token}",
        "--write-out", "\n%{http_code}",
    ]  # fmt: skip
    if body is not None:
        argv += ["--header", "Content-Type: application/json"]
        argv += ["--data-raw", json.dumps(body)]
    result = lab.run("gw", [*argv, ADMIN_URL + path], check=True)
    text, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else {}


def test_api_grant_and_revoke_reach_client(lab: Lab, token: str) -> None:
    mac, ip = lab.macs["c1"], lab.addresses["c1"]
    assert is_captive(lab, "c1")
    try:
        status, body = admin_request(
            lab, token, "POST", "/clients", {"mac": mac, "ip": ip, "duration": 300}
        )
        assert status == 201, body
        assert (mac, ip) in kernel_elements(lab)
        assert is_online(lab, "c1")

        status, body = admin_request(lab, token, "DELETE", f"/clients/{mac}")
        assert status == 200, body
        assert wait_until(lambda: is_captive(lab, "c1"), timeout=5)
        assert (mac, ip) not in kernel_elements(lab)
    finally:
        revoke_quietly(lab, mac)


def test_api_extend_moves_kernel_timeout(lab: Lab, token: str) -> None:
    mac, ip = lab.macs["c2"], lab.addresses["c2"]
    try:
        admin_request(
            lab, token, "POST", "/clients", {"mac": mac, "ip": ip, "duration": 120}
        )
        status, body = admin_request(
            lab, token, "POST", f"/clients/{mac}/extend", {"seconds": 600}
        )
        assert status == 200, body
        assert kernel_elements(lab)[(mac, ip)] > 600
    finally:
        revoke_quietly(lab, mac)


def test_api_without_token_is_401(lab: Lab) -> None:
    result = lab.run(
        "gw",
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", ADMIN_URL + "/status"],
        check=True,
    )
    assert result.stdout == "401"


def test_metrics_report_forwarded_bytes(lab: Lab, token: str) -> None:
    result = lab.run(
        "gw",
        ["curl", "-sS", "-H", f"Authorization: Bearer {token}",
         "http://127.0.0.1:8512/metrics"],
        check=True,
    )  # fmt: skip
    assert "capport_forwarded_bytes_total" in result.stdout
    assert "capport_nftables_transaction_seconds_count" in result.stdout


def test_api_trust_lets_client_online(lab: Lab, token: str) -> None:
    mac = lab.macs["c2"]
    try:
        status, body = admin_request(lab, token, "PUT", f"/trusted/{mac}")
        assert status == 200, body
        assert wait_until(lambda: is_online(lab, "c2"), timeout=5)
        status, _ = admin_request(lab, token, "DELETE", f"/trusted/{mac}")
        assert status == 204
        assert wait_until(lambda: is_captive(lab, "c2"), timeout=5)
    finally:
        admin_request(lab, token, "DELETE", f"/trusted/{mac}")


@pytest.mark.parametrize("ip", ["192.0.2.255", "192.0.2.1", "10.0.0.1"])
def test_api_grant_outside_lan_is_422(lab: Lab, token: str, ip: str) -> None:
    mac = lab.macs["c1"]
    try:
        status, body = admin_request(
            lab, token, "POST", "/clients", {"mac": mac, "ip": ip, "duration": 60}
        )
        assert status == 422, body
        assert body["field"] == "ip"
        assert ip in str(body["error"])
        assert (mac, ip) not in kernel_elements(lab)
    finally:
        revoke_quietly(lab, mac)
