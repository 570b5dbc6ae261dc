"""Restarts after a wall-clock jump keep each session's remaining time.

The test cannot move the host's clock, so it moves the wall times in the
store instead, while the gateway is stopped: a session stored an hour
earlier than it was is what a gateway sees after its clock jumped an hour
forward, and the other way round. The boot clock, which the gateway also
stores, is untouched, and it decides.

A session that ran out while the gateway was stopped ends, by the same
clocks, at its expiry rather than at the restart.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from clients import clients_json, is_online, kernel_elements, log_in, store_sessions
from netns import wait_until

from capport.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

SESSION_SECONDS = 120
HOUR = 3600.0


def _shift_wall_times(lab: Lab, seconds: float) -> None:
    with sqlite3.connect(lab.store_path, timeout=5) as db:
        db.execute(
            "UPDATE sessions SET started_at = started_at + ?, "
            "expires_at = expires_at + ? WHERE ended_at IS NULL",
            (seconds, seconds),
        )
    db.close()


@pytest.mark.parametrize(
    "shift", [pytest.param(-HOUR, id="forward"), pytest.param(HOUR, id="backward")]
)
@pytest.mark.lab_config(session_duration=SESSION_SECONDS)
def test_restart_after_clock_jump_keeps_time(fresh_lab: Lab, shift: float) -> None:
    log_in(fresh_lab, "c1")
    logged_in = time.monotonic()
    fresh_lab.stop_gateway()
    _shift_wall_times(fresh_lab, shift)
    fresh_lab.start_gateway()

    elapsed = time.monotonic() - logged_in
    (row,) = clients_json(fresh_lab)
    remaining = float(str(row["remaining"]))
    assert SESSION_SECONDS - elapsed - 2 <= remaining <= SESSION_SECONDS - elapsed + 1
    assert is_online(fresh_lab, "c1")


@pytest.mark.parametrize(
    "shift", [pytest.param(-HOUR, id="forward"), pytest.param(HOUR, id="backward")]
)
@pytest.mark.lab_config(session_duration=SESSION_SECONDS)
def test_store_agrees_with_kernel_after_clock_jump(
    fresh_lab: Lab, shift: float
) -> None:
    log_in(fresh_lab, "c1")
    fresh_lab.stop_gateway()
    _shift_wall_times(fresh_lab, shift)
    fresh_lab.start_gateway()

    key = (fresh_lab.macs["c1"], fresh_lab.addresses["c1"])
    kernel = kernel_elements(fresh_lab)
    stored = store_sessions(fresh_lab)
    assert set(kernel) == {key}
    assert set(stored) == {key}
    assert abs(kernel[key] - (stored[key] - time.time())) <= 2
    assert kernel[key] <= SESSION_SECONDS


SHORT_SESSION_SECONDS = 5


def _ended_rows(lab: Lab, table: str) -> list[tuple[float, float, str]]:
    """Return (started_at, ended_at, end_reason) of the ended rows of table."""
    uri = f"file:{lab.store_path}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        rows = db.execute(
            f"SELECT started_at, ended_at, end_reason FROM {table} "
            "WHERE ended_at IS NOT NULL"
        ).fetchall()
    db.close()
    return rows


@pytest.mark.lab_config(session_duration=SHORT_SESSION_SECONDS)
def test_expired_while_down_ends_at_expiry(fresh_lab: Lab) -> None:
    log_in(fresh_lab, "c1")
    fresh_lab.stop_gateway()
    time.sleep(SHORT_SESSION_SECONDS + 5)
    fresh_lab.start_gateway()

    (session,) = _ended_rows(fresh_lab, "sessions")
    assert session[2] == "expired"
    assert session[1] - session[0] == pytest.approx(SHORT_SESSION_SECONDS, abs=1)
    assert wait_until(lambda: _ended_rows(fresh_lab, "accounting") != [], 5)
    (record,) = _ended_rows(fresh_lab, "accounting")
    assert record[2] == "expired"
    assert record[1] == pytest.approx(session[1])
