"""Reducing the load generator's login records to figures."""

from __future__ import annotations

import math

import pytest

from capport.bench.grants import summarise_logins


def _login(started: float, attempts: int = 1) -> dict[str, float]:
    return {
        "started": started,
        "posted": started + 0.001,
        "answered": started + 0.003,
        "forwarded": started + 0.004,
        "attempts": attempts,
    }


def test_latencies_from_the_post() -> None:
    summary = summarise_logins([_login(10.0)])
    assert summary.forwarded_ms[0] == pytest.approx(3.0)
    assert summary.answered_ms[0] == pytest.approx(2.0)


def test_rate_over_first_start_to_last_answer() -> None:
    summary = summarise_logins([_login(10.0), _login(10.5), _login(11.0)])
    assert summary.seconds == pytest.approx(1.003)
    assert summary.rate == pytest.approx(3 / 1.003)


def test_errors_are_counted_apart() -> None:
    summary = summarise_logins([_login(1.0), {"error": "mv3: timeout"}])
    assert summary.attempted == 2
    assert summary.succeeded == 1
    assert summary.errors == ("mv3: timeout",)


def test_late_grants_counted() -> None:
    summary = summarise_logins([_login(1.0, attempts=3), _login(2.0)])
    assert summary.late_grants == 1


def test_no_successful_login_has_no_rate() -> None:
    summary = summarise_logins([{"error": "refused"}])
    assert summary.succeeded == 0
    assert math.isnan(summary.rate)
