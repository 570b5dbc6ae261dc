"""`capport run` in a throwaway namespace: a start that fails leaves no store.

The namespace has a bridge as LAN interface with the portal address and
forwarding on, so the host checks pass and the start fails on a port that
a test listener holds, or on the socket for router advertisements. The
namespace is deleted afterwards, even when the test fails.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import Namespace, bridge_host

from capport.lab.labconfig import render_toml

pytestmark = pytest.mark.lab

PORTAL = "192.0.2.1"


@pytest.fixture
def host() -> Iterator[Namespace]:
    """A namespace with a bridge lan0 at {PORTAL}/24 and IPv4 forwarding on."""
    with bridge_host("start", PORTAL) as namespace:
        yield namespace


def write_config(directory: Path, **sections: dict[str, object]) -> Path:
    document: dict[str, dict[str, object]] = {
        "gateway": {"interface": "lan0"},
        "portal": {"address": PORTAL},
        "store": {"path": str(directory / "state" / "other.db")},
        "control": {"socket": str(directory / "control.sock")},
        "firewall": {"table": "capstart"},
        **sections,
    }
    path = directory / "other.toml"
    path.write_text(render_toml(document))
    return path


def run_gateway(host: Namespace, config: Path) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", host.name, sys.executable, "-m", "capport"]
    return subprocess.run(
        [*argv, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("key", "address", "port"),
    [
        ("portal.port", PORTAL, 80),
        ("responder.port", PORTAL, 8511),
        ("admin.port", "127.0.0.1", 8512),
    ],
)
def test_port_in_use_creates_no_store(
    host: Namespace, tmp_path: Path, key: str, address: str, port: int
) -> None:
    config = write_config(tmp_path)
    with host.entered():
        host.ip("link", "set", "lo", "up")
        listener = socket.create_server((address, port))
    try:
        result = run_gateway(host, config)
    finally:
        listener.close()
    assert result.returncode == 1, result.stderr
    assert f"{key}: {address}:{port} is already in use" in result.stderr
    assert not (tmp_path / "state").exists()


def test_router_advertisement_failure_creates_no_store(
    host: Namespace, tmp_path: Path
) -> None:
    # With 100 probes, one a second, duplicate address detection keeps the
    # new link-local address tentative for longer than the RA socket waits.
    host.sysctl("net.ipv6.conf.lan0.dad_transmits", "100")
    host.ip("link", "set", "lan0", "down")
    host.ip("link", "set", "lan0", "up")
    config = write_config(tmp_path, provisioning={"ra_captive_portal": True})
    result = run_gateway(host, config)
    assert result.returncode == 1, result.stderr
    assert "provisioning.ra_captive_portal" in result.stderr
    assert "still tentative" in result.stderr
    assert not (tmp_path / "state").exists()
