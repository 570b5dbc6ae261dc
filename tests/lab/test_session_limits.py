"""Session limits of the whole gateway: quotas, idle timeout, rates, MAC lists,
the walled garden, and what a device sees when its session ends.

Each test that needs its own limits builds a laboratory of its own
(fresh_lab with lab_config). The accounting pass runs every second there,
so a session that ran out ends within a second or two.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from clients import (
    Download,
    capport,
    clients_json,
    connect,
    curl,
    downloading,
    is_captive,
    is_online,
    log_in,
    post_form,
    revoke_quietly,
    status_form,
)
from netns import Namespace, serve, wait_until

from capport.bench.parsing import parse_iperf3
from capport.lab import Lab
from capport.lab.origin import MARKER
from capport.lab.topology import (
    GARDEN_HOST,
    GARDEN_HOST_ADDRESS,
    GARDEN_NETWORK_ADDRESS,
    ORIGIN_HOST,
    ORIGIN_URL,
    PORTAL_URL,
    UPSTREAM_ADDRESS,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

QUOTA_BYTES = 1_000_000
STREAM_BYTES = 10_000_000
ACCOUNTING = {"accounting_interval": 1}

# How long after a limit is reached the gateway must have ended the session:
# one accounting interval, plus the time to revoke, with room for a busy
# machine.
END_SECONDS = 5.0

# A connection counts as cut when a request on it gets no response within
# this many seconds, or a reset.
CUT_SECONDS = 2.0


def _session_config(**session: object) -> dict[str, object]:
    return {"session": {**ACCOUNTING, **session}}


# Reading the gateway's store


def _end_reasons(lab: Lab) -> list[str]:
    """Return the end reasons of the store's ended sessions, oldest first."""
    uri = f"file:{lab.store_path}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT end_reason FROM sessions WHERE ended_at IS NOT NULL ORDER BY id"
        ).fetchall()
    db.close()
    return [reason for (reason,) in rows]


def _ended_with(lab: Lab, reason: str, timeout: float = END_SECONDS) -> bool:
    return wait_until(lambda: reason in _end_reasons(lab), timeout, interval=0.2)


# An idle keep-alive connection that a test can check for being cut


@contextmanager
def _open_connection(lab: Lab, role: str) -> Iterator[socket.socket]:
    """Open a keep-alive HTTP connection from role to the origin; one request done."""
    sock = connect(lab, role, 80)
    try:
        sock.settimeout(CUT_SECONDS)
        sock.sendall(_keepalive_get())
        assert MARKER.encode() in _read_response(sock)
        yield sock
    finally:
        sock.close()


def _keepalive_get() -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {ORIGIN_HOST}\r\n\r\n".encode()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while MARKER.encode() not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _is_cut(sock: socket.socket) -> bool:
    """Tell whether a request on sock gets no response (a reset or silence)."""
    try:
        sock.sendall(_keepalive_get())
        return not sock.recv(65536)
    except (TimeoutError, ConnectionResetError, BrokenPipeError):
        return True


# Quotas


def _stalls(download: Download, quiet_seconds: float = 2.0) -> bool:
    """Wait until download received bytes and then none for quiet_seconds."""
    if not download.wait_for_bytes(1):
        return False
    return wait_until(
        lambda: time.monotonic() - download.last_read_at > quiet_seconds, timeout=20
    )


def _with_limit(key: str, value: object) -> object:
    """A parameter key whose test gets a laboratory with session.key = value."""
    config = _session_config(**{key: value})
    return pytest.param(key, marks=pytest.mark.lab_config(extra_config=config))


@pytest.mark.parametrize(
    "quota_key",
    [_with_limit("quota_down", QUOTA_BYTES), _with_limit("quota_total", QUOTA_BYTES)],
)
def test_quota_stops_stream_within_one_percent(fresh_lab: Lab, quota_key: str) -> None:
    log_in(fresh_lab, "c1")
    with downloading(fresh_lab, "c1", delay_ms=0) as download:
        # The stream stalls once the kernel drops what exceeds the quota.
        assert _stalls(download)
        received = download.total
    assert received <= QUOTA_BYTES * 1.01
    assert received >= QUOTA_BYTES * 0.9
    assert received < STREAM_BYTES


UPLOAD_PORT = 9000


@pytest.mark.lab_config(extra_config=_session_config(quota_up=QUOTA_BYTES))
def test_upload_quota_stops_within_one_percent(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    received: list[int] = []

    def count(connection: socket.socket) -> None:
        while chunk := connection.recv(65536):
            received.append(len(chunk))

    upstream = Namespace(fresh_lab.namespace("up"))
    with serve(upstream, UPSTREAM_ADDRESS, UPLOAD_PORT, count):
        with connect(fresh_lab, "c1", UPLOAD_PORT) as sock:
            # Sending blocks once the kernel drops what exceeds the quota.
            sock.settimeout(2.0)
            chunk = b"x" * 65536
            with suppress(TimeoutError, ConnectionResetError):
                for _ in range(STREAM_BYTES // len(chunk)):
                    sock.sendall(chunk)
        assert wait_until(lambda: sum(received) > 0, timeout=2)
    assert sum(received) <= QUOTA_BYTES * 1.01
    assert sum(received) >= QUOTA_BYTES * 0.9


@pytest.mark.lab_config(extra_config=_session_config(quota_down=QUOTA_BYTES))
def test_quota_ends_session_with_511(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    with _open_connection(fresh_lab, "c1") as idle_connection:
        with downloading(fresh_lab, "c1", delay_ms=0) as download:
            assert _ended_with(fresh_lab, "quota", timeout=20), _end_reasons(fresh_lab)
            assert download.total <= QUOTA_BYTES * 1.01
        assert _is_cut(idle_connection)
    assert is_captive(fresh_lab, "c1")
    assert clients_json(fresh_lab) == []


@pytest.mark.lab_config(extra_config=_session_config(quota_down=QUOTA_BYTES))
def test_quota_counts_across_restart(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    with downloading(fresh_lab, "c1", delay_ms=100) as download:
        assert download.wait_for_bytes(QUOTA_BYTES // 2, timeout=10)
    first = download.total
    fresh_lab.restart_gateway()
    with downloading(fresh_lab, "c1", delay_ms=0) as download:
        assert _stalls(download)
    assert first + download.total <= QUOTA_BYTES * 1.01
    assert first + download.total >= QUOTA_BYTES * 0.9
    assert _ended_with(fresh_lab, "quota")


# Idle timeout


@pytest.mark.lab_config(extra_config=_session_config(idle_timeout=6))
def test_idle_device_loses_access_active_keeps_it(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    log_in(fresh_lab, "c2")
    started = time.monotonic()
    # c1 reaches the origin every 3 s for 15 s; c2 stays silent.
    while time.monotonic() - started < 15:
        assert is_online(fresh_lab, "c1")
        time.sleep(3)
    assert is_online(fresh_lab, "c1")
    assert is_captive(fresh_lab, "c2")
    assert _end_reasons(fresh_lab) == ["idle"]


@pytest.mark.lab_config(extra_config=_session_config(idle_timeout=3))
def test_idle_end_cuts_open_connection(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    with _open_connection(fresh_lab, "c1") as connection:
        assert _ended_with(fresh_lab, "idle", timeout=3 + END_SECONDS)
        assert _is_cut(connection)
    assert is_captive(fresh_lab, "c1")


# Every way a session ends: the next request gets a 511, connections stop


@pytest.mark.parametrize("how", ["logout", "revoke"])
def test_ended_session_cuts_connection_and_gets_511(lab: Lab, how: str) -> None:
    log_in(lab, "c1")
    try:
        with _open_connection(lab, "c1") as connection:
            if how == "logout":
                response = post_form(lab, "c1", status_form(lab, "c1"))
                assert "You are signed out" in response.body
            else:
                revoke_quietly(lab, lab.macs["c1"])
            assert _is_cut(connection)
        assert curl(lab, "c1", ORIGIN_URL).status == 511
    finally:
        revoke_quietly(lab, lab.macs["c1"])


@pytest.mark.lab_config(session_duration=5)
def test_expired_session_cuts_connection_and_gets_511(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    with _open_connection(fresh_lab, "c1") as connection:
        assert _ended_with(fresh_lab, "expired", timeout=5 + END_SECONDS)
        assert _is_cut(connection)
    assert curl(fresh_lab, "c1", ORIGIN_URL).status == 511


# Bandwidth

RATE_BITS = 20_000_000


def _iperf3(lab: Lab, reverse: bool) -> float:
    """Run a 5 s iperf3 TCP test from c1 to the upstream host; return bit/s."""
    server = lab.popen(
        "up",
        ["iperf3", "--server", "--one-off", "--port", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        argv = ["iperf3", "--client", UPSTREAM_ADDRESS, "--port", "5201"]
        # The first second, in which the bucket's burst passes, is omitted.
        argv += ["--time", "5", "--omit", "1", "--json"]
        if reverse:
            argv.append("--reverse")
        result = lab.run("c1", argv, timeout=30)
        return parse_iperf3(result.stdout).bits_per_second
    finally:
        with suppress(ProcessLookupError):
            server.kill()
        server.wait(timeout=5)


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")
@pytest.mark.parametrize(
    "direction",
    [
        _with_limit("bandwidth_up", RATE_BITS),
        _with_limit("bandwidth_down", RATE_BITS),
    ],
)
def test_bandwidth_within_ten_percent(fresh_lab: Lab, direction: str) -> None:
    log_in(fresh_lab, "c1")
    measured = _iperf3(fresh_lab, reverse=direction == "bandwidth_down")
    assert abs(measured - RATE_BITS) <= RATE_BITS * 0.10, measured


# Trusted and blocked MACs


@pytest.mark.lab_config(
    extra_config={"access": {"trusted_macs": ["02:00:00:00:00:12"]}}
)
def test_configured_trusted_mac_online_without_login(fresh_lab: Lab) -> None:
    assert is_online(fresh_lab, "c2")
    assert is_captive(fresh_lab, "c1")


@pytest.mark.lab_config(
    extra_config={"access": {"blocked_macs": ["02:00:00:00:00:12"]}}
)
def test_configured_blocked_mac_refused_by_portal(fresh_lab: Lab) -> None:
    response = curl(fresh_lab, "c2", PORTAL_URL)
    assert response.status == 403
    assert "Access blocked" in response.body
    assert "02:00:00:00:00:12" in response.body
    assert is_captive(fresh_lab, "c2")


def _mac_command(lab: Lab, command: str, role: str) -> subprocess.CompletedProcess[str]:
    result = capport(command, lab.macs[role], "--socket", str(lab.control_socket))
    assert result.returncode == 0, result.stderr
    return result


def test_trust_command_lets_device_online(lab: Lab) -> None:
    try:
        result = _mac_command(lab, "trust", "c2")
        assert f"{lab.macs['c2']} is now trusted." in result.stdout
        assert is_online(lab, "c2")
        _mac_command(lab, "untrust", "c2")
        assert is_captive(lab, "c2")
    finally:
        _mac_command(lab, "untrust", "c2")


def test_block_command_ends_session_and_refuses(lab: Lab) -> None:
    log_in(lab, "c2")
    try:
        result = _mac_command(lab, "block", "c2")
        assert "Ended session" in result.stdout
        assert is_captive(lab, "c2")
        splash = curl(lab, "c2", PORTAL_URL)
        assert splash.status == 403
        assert "Access blocked" in splash.body
        _mac_command(lab, "unblock", "c2")
        assert curl(lab, "c2", PORTAL_URL).status == 200
    finally:
        _mac_command(lab, "unblock", "c2")
        revoke_quietly(lab, lab.macs["c2"])


def test_blocked_mac_dropped_even_if_authorised(lab: Lab) -> None:
    """The kernel drops a blocked MAC before it looks at the authorised set."""
    log_in(lab, "c2")
    try:
        # Put the element back behind the gateway's back, as a stale table would.
        _mac_command(lab, "block", "c2")
        element = f"{{ {lab.macs['c2']} . {lab.addresses['c2']} timeout 60s }}"
        lab.run(
            "gw",
            ["nft", "add", "element", "inet", "capport", "allowed4", element],
            check=True,
        )
        with pytest.raises(OSError):
            connect(lab, "c2", 443, timeout=2)
    finally:
        _mac_command(lab, "unblock", "c2")
        revoke_quietly(lab, lab.macs["c2"])


def test_mac_lists_command_shows_lists(lab: Lab) -> None:
    try:
        _mac_command(lab, "block", "c2")
        result = subprocess.run(
            [
                "curl",
                "-s",
                "--unix-socket",
                str(lab.control_socket),
                "http://capport/v1/macs",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(result.stdout)["blocked"] == [lab.macs["c2"]]
    finally:
        _mac_command(lab, "unblock", "c2")


# Walled garden

GARDEN = {
    "walled_garden": {
        "networks": [f"{GARDEN_NETWORK_ADDRESS}/32"],
        "hosts": [GARDEN_HOST],
    }
}


@pytest.mark.lab_config(extra_config=GARDEN)
def test_garden_network_reachable_before_login(fresh_lab: Lab) -> None:
    response = curl(fresh_lab, "c1", f"http://{GARDEN_NETWORK_ADDRESS}/")
    assert response.status == 200
    assert MARKER in response.body
    assert is_captive(fresh_lab, "c1")


@pytest.mark.lab_config(extra_config=GARDEN)
def test_garden_host_name_reachable_before_login(fresh_lab: Lab) -> None:
    response = curl(fresh_lab, "c1", f"http://{GARDEN_HOST}/")
    assert response.status == 200
    assert MARKER in response.body
    # Another port of the same address is reachable too.
    with connect(fresh_lab, "c1", 443, address=GARDEN_HOST_ADDRESS) as sock:
        sock.settimeout(2)
        assert sock.recv(100)
    assert is_captive(fresh_lab, "c1")
