"""Durations and times as the portal's pages show them."""

from __future__ import annotations

import pytest

from capport.portal.timefmt import describe_duration, format_iso_time


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5.0, "no time"),
        (0.0, "no time"),
        (1.0, "less than a minute"),
        (59.9, "less than a minute"),
        (60.0, "1 minute"),
        (150.0, "3 minutes"),
        (3599.6, "1 hour"),
        (3600.0, "1 hour"),
        (3900.0, "1 hour 5 minutes"),
        (7200.0, "2 hours"),
        (86400.0, "1 day"),
        (86400.0 + 7200.0 + 60.0, "1 day 2 hours"),
        (86400.0 + 300.0, "1 day 5 minutes"),
        (3 * 86400.0, "3 days"),
    ],
)
def test_describe_duration(seconds: float, expected: str) -> None:
    assert describe_duration(seconds) == expected


def test_iso_time_carries_offset() -> None:
    text = format_iso_time(1_700_000_000.0)
    assert text[-6] in "+-"
    assert text[-3] == ":"
