"""Log lines of the portal's connection guard for connections it closes."""

from __future__ import annotations

import logging

import pytest

from capport.portal.guard import ConnectionGuard


def closed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "capport.portal"]


def test_guard_logs_each_client_at_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "capport.portal")
    guard = ConnectionGuard(100, 1, request_timeout=5)
    for client in ("192.0.2.11", "192.0.2.12"):
        assert guard.admit(client)
        assert not guard.admit(client)
    limits = "at its limit (1 per client, 100 in total)."
    assert closed_lines(caplog) == [
        f"Closed a portal connection from 192.0.2.11 {limits}",
        f"Closed a portal connection from 192.0.2.12 {limits}",
    ]


def test_guard_counts_repeats_of_one_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "capport.portal")
    guard = ConnectionGuard(100, 1, request_timeout=5)
    guard.admit("192.0.2.11")
    for _ in range(3):
        guard.admit("192.0.2.11")
    assert len(closed_lines(caplog)) == 1
    assert guard.rejected == 3
