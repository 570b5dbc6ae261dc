"""Sessions of the whole gateway: identity, revocation, expiry and restarts.

Tests on the shared laboratory leave both clients captive with their own
MAC addresses. Tests that stop the gateway or need short sessions build a
laboratory of their own (fresh_lab).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from clients import (
    CURL_COULDNT_CONNECT,
    CurlFailed,
    clients_json,
    connect,
    curl,
    downloading,
    is_captive,
    is_online,
    kernel_elements,
    log_in,
    log_text,
    revoke_quietly,
    send_udp,
    signed_in,
    status_page,
    store_sessions,
)
from netns import wait_until

from capport.lab import Lab
from capport.lab.labconfig import render_toml
from capport.lab.topology import ORIGIN_URL, PORTAL_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

# The bound a cut connection must meet: bytes stop arriving within this
# many seconds of a revocation or of the end of a session.
CUT_SECONDS = 2.0

# A download counts as stalled once no bytes arrived for this long. While
# it can, the origin sends a 64 KiB chunk every 20 ms.
STALL_SECONDS = 1.5

SESSION_SECONDS = 5
RESTART_SESSION_SECONDS = 120


# A second host with an authorised MAC


def _set_mac(lab: Lab, role: str, mac: str) -> None:
    lab.run(role, ["ip", "link", "set", "eth0", "address", mac], check=True)
    # Forgetting the gateway's address makes the client send an ARP request,
    # from which the gateway learns the client's new MAC at once (Linux
    # updates a neighbour entry from the sender of a request to itself).
    lab.run(role, ["ip", "neigh", "flush", "dev", "eth0"], check=True)


def _gateway_neighbour(lab: Lab, ip: str) -> str:
    return lab.run("gw", ["ip", "neigh", "show", ip], check=True).stdout


def _gateway_sees(lab: Lab, role: str, mac: str) -> bool:
    """Wait until the gateway's neighbour entry for role's address shows mac."""
    return wait_until(
        lambda: f"lladdr {mac}" in _gateway_neighbour(lab, lab.addresses[role]),
        timeout=3,
    )


@contextmanager
def _using_mac(lab: Lab, role: str, mac: str) -> Iterator[None]:
    """Give role the MAC mac for the block, then its own again.

    A request to the origin on each change makes the client resolve the
    gateway again, and the block starts once the gateway has seen mac.
    """
    _set_mac(lab, role, mac)
    try:
        curl(lab, role, ORIGIN_URL)
        assert _gateway_sees(lab, role, mac), _gateway_neighbour(
            lab, lab.addresses[role]
        )
        yield
    finally:
        _set_mac(lab, role, lab.macs[role])
        curl(lab, role, ORIGIN_URL)
        assert _gateway_sees(lab, role, lab.macs[role]), _gateway_neighbour(
            lab, lab.addresses[role]
        )


def _conflict_warning(lab: Lab) -> str:
    return (
        f"MAC {lab.macs['c1']} is authorised at {lab.addresses['c1']} and also "
        f"seen at {lab.addresses['c2']}; the second address stays captive."
    )


def test_cloned_mac_stays_captive(lab: Lab) -> None:
    with signed_in(lab, "c1"), _using_mac(lab, "c2", lab.macs["c1"]):
        assert curl(lab, "c2", ORIGIN_URL).status == 511
        with pytest.raises(ConnectionRefusedError):
            connect(lab, "c2", 443)
        assert send_udp(lab, "c2").errno == errno.EHOSTUNREACH
        assert is_online(lab, "c1")


def test_cloned_mac_gets_conflict_page(lab: Lab) -> None:
    with signed_in(lab, "c1"), _using_mac(lab, "c2", lab.macs["c1"]):
        response = curl(lab, "c2", PORTAL_URL)
        assert response.status == 409
        assert "Address already in use" in response.body
        assert [row["ip"] for row in clients_json(lab)] == [lab.addresses["c1"]]


def test_cloned_mac_logs_warning_on_portal_visit(lab: Lab) -> None:
    warning = _conflict_warning(lab)
    with signed_in(lab, "c1"), _using_mac(lab, "c2", lab.macs["c1"]):
        before = log_text(lab).count(warning)
        curl(lab, "c2", ORIGIN_URL)
        assert log_text(lab).count(warning) == before
        curl(lab, "c2", PORTAL_URL)
        assert wait_until(lambda: log_text(lab).count(warning) == before + 1, 3)


def test_new_mac_at_authorised_address_gets_511(lab: Lab) -> None:
    # A device that reconnects with a new, randomised MAC may get its old
    # address again from DHCP. It must not inherit the old session.
    with signed_in(lab, "c1"), _using_mac(lab, "c1", "02:00:00:00:00:77"):
        response = curl(lab, "c1", ORIGIN_URL)
        assert response.status == 511
        assert "location" not in {name.lower() for name, _ in response.headers}


# Revocation


def test_revoke_cuts_open_download(lab: Lab) -> None:
    log_in(lab, "c1")
    try:
        with downloading(lab, "c1") as download:
            assert download.wait_for_bytes(1 << 20), "the download did not start"
            revoke_quietly(lab, lab.macs["c1"])
            revoked_at = time.monotonic()
            time.sleep(CUT_SECONDS + STALL_SECONDS)
            assert download.last_read_at - revoked_at < CUT_SECONDS
            assert not download.finished
            # The client sees a reset if it sends an ACK after the revocation,
            # because the forward chain rejects that with a reset. Otherwise
            # it sees a stall, because the chain drops what the origin sends.
            assert download.error is None or isinstance(
                download.error, ConnectionResetError
            )
    finally:
        revoke_quietly(lab, lab.macs["c1"])


# Expiry


def _expires_iso(body: str) -> datetime:
    """Return the expiry the status page states in its second <time> element."""
    times = re.findall(r'<time datetime="([^"]+)">', body)
    assert len(times) == 2, body
    return datetime.fromisoformat(times[1])


@pytest.mark.lab_config(session_duration=SESSION_SECONDS)
def test_session_ends_on_time(fresh_lab: Lab) -> None:
    login_started = time.monotonic()
    log_in(fresh_lab, "c1")
    logged_in = time.monotonic()

    # Before the end: the status page counts down.
    page = status_page(fresh_lab, "c1")
    assert page.status == 200
    assert "You are connected." in page.body
    assert "<dt>Time remaining</dt>\n<dd>less than a minute</dd>" in page.body
    seconds_left = _expires_iso(page.body).timestamp() - time.time()
    assert SESSION_SECONDS - 2 <= seconds_left <= SESSION_SECONDS

    with downloading(fresh_lab, "c1") as download:
        assert download.wait_for_bytes(1 << 16), "the download did not start"
        judged_at = logged_in + SESSION_SECONDS + CUT_SECONDS + 0.5
        time.sleep(max(0.0, judged_at - time.monotonic()))

        # The end: bytes flowed until it and stopped within CUT_SECONDS.
        earliest_end = login_started + SESSION_SECONDS
        latest_end = logged_in + SESSION_SECONDS
        assert download.last_read_at > earliest_end - 0.5
        assert download.last_read_at < latest_end + CUT_SECONDS
        assert not download.finished

    # After the end: captive again, with no session left anywhere.
    assert is_captive(fresh_lab, "c1")
    assert clients_json(fresh_lab) == []
    assert kernel_elements(fresh_lab) == {}
    assert store_sessions(fresh_lab) == {}


# Restarts and reloads


def _set_session_duration(lab: Lab, seconds: int) -> None:
    document = tomllib.loads(lab.config_path.read_text())
    document["session"]["duration"] = seconds
    lab.config_path.write_text(render_toml(document))


def _reload(lab: Lab) -> None:
    """Send SIGHUP and wait for the gateway to confirm the reload."""
    done = "Configuration reloaded."
    before = log_text(lab).count(done)
    os.kill(lab.processes["gateway"].pid, signal.SIGHUP)
    assert wait_until(lambda: log_text(lab).count(done) > before, 5), log_text(lab)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
@pytest.mark.lab_config(session_duration=RESTART_SESSION_SECONDS)
def test_device_online_while_gateway_down(fresh_lab: Lab, how: str) -> None:
    log_in(fresh_lab, "c1")
    status = fresh_lab.stop_gateway(signal.Signals[how])
    assert status == (0 if how == "SIGTERM" else -signal.SIGKILL)
    assert is_online(fresh_lab, "c1")
    # The responder is gone, so captive devices stay captive: the redirected
    # connection meets a closed port.
    with pytest.raises(CurlFailed) as failure:
        curl(fresh_lab, "c2", ORIGIN_URL, max_time=2)
    assert failure.value.exit_status == CURL_COULDNT_CONNECT
    fresh_lab.start_gateway()
    assert is_online(fresh_lab, "c1")
    assert is_captive(fresh_lab, "c2")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "SIGHUP"])
@pytest.mark.lab_config(session_duration=RESTART_SESSION_SECONDS)
def test_restart_keeps_remaining_time(fresh_lab: Lab, how: str) -> None:
    login_started = time.monotonic()
    log_in(fresh_lab, "c1")
    logged_in = time.monotonic()
    if how == "SIGHUP":
        # New sessions would get ten minutes; the running one must not.
        _set_session_duration(fresh_lab, 600)
        time.sleep(1)
        _reload(fresh_lab)
    else:
        fresh_lab.stop_gateway(signal.Signals[how])
        time.sleep(1)
        fresh_lab.start_gateway()

    requested_at = time.monotonic()
    rows = clients_json(fresh_lab)
    received_at = time.monotonic()
    assert [row["mac"] for row in rows] == [fresh_lab.macs["c1"]]
    remaining = float(str(rows[0]["remaining"]))
    # remaining is rounded to 0.1 s.
    assert remaining <= RESTART_SESSION_SECONDS - (requested_at - logged_in) + 0.1
    assert remaining >= RESTART_SESSION_SECONDS - (received_at - login_started) - 0.1
    assert is_online(fresh_lab, "c1")


@pytest.mark.lab_config(session_duration=RESTART_SESSION_SECONDS)
def test_reload_sets_duration_of_new_sessions(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    _set_session_duration(fresh_lab, 600)
    _reload(fresh_lab)
    log_in(fresh_lab, "c2")

    rows = {row["mac"]: float(str(row["remaining"])) for row in clients_json(fresh_lab)}
    assert set(rows) == {fresh_lab.macs["c1"], fresh_lab.macs["c2"]}
    assert rows[fresh_lab.macs["c1"]] <= RESTART_SESSION_SECONDS
    assert rows[fresh_lab.macs["c2"]] > 600 - 5


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "SIGHUP"])
@pytest.mark.lab_config(session_duration=RESTART_SESSION_SECONDS)
def test_kernel_set_matches_store_after_restart(fresh_lab: Lab, how: str) -> None:
    log_in(fresh_lab, "c1")
    if how == "SIGHUP":
        _reload(fresh_lab)
    else:
        fresh_lab.stop_gateway(signal.Signals[how])
        fresh_lab.start_gateway()

    kernel = kernel_elements(fresh_lab)
    stored = store_sessions(fresh_lab)
    now = time.time()
    key = (fresh_lab.macs["c1"], fresh_lab.addresses["c1"])
    assert set(kernel) == {key}
    assert set(stored) == {key}
    assert abs(kernel[key] - (stored[key] - now)) <= 2
