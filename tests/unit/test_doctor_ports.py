"""The port check of `capport doctor`, with real sockets on 127.0.0.1."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from capport.config import Config, parse_config
from capport.doctor.checks import check_ports
from capport.doctor.report import Status


def free_ports(count: int) -> list[int]:
    """Return ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def loopback_config(tmp_path: Path) -> Config:
    portal, responder, admin = free_ports(3)
    return parse_config(
        {
            "gateway": {"interface": "lo"},
            "portal": {"address": "127.0.0.1", "port": portal},
            "responder": {"port": responder},
            "admin": {"port": admin},
            "store": {"path": str(tmp_path / "capport.db")},
        }
    )


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[None]:
    """Hold the store's lock as a running capport does."""
    fd = os.open(tmp_path / "capport.db.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield
    finally:
        os.close(fd)


def test_ports_free(tmp_path: Path) -> None:
    config = loopback_config(tmp_path)
    check = check_ports(config)
    assert check.status is Status.OK
    assert check.detail.startswith("free: ")


def test_port_in_use_fails(tmp_path: Path) -> None:
    config = loopback_config(tmp_path)
    with socket.create_server(("127.0.0.1", config.portal.port)):
        check = check_ports(config)
    assert check.status is Status.FAIL
    expected = f"in use by another program: portal.port 127.0.0.1:{config.portal.port}"
    assert check.detail == expected


@pytest.mark.usefixtures("held_lock")
def test_port_in_use_by_capport_ok(tmp_path: Path) -> None:
    config = loopback_config(tmp_path)
    with socket.create_server(("127.0.0.1", config.portal.port)):
        check = check_ports(config)
    assert check.status is Status.OK
    assert check.detail.startswith("in use by the running capport: portal.port")
