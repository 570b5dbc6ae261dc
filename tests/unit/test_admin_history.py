"""Hourly series and forwarded-byte arithmetic behind /api/v1/history."""

from __future__ import annotations

from capport.admin.history import HOUR, forwarded_since, hourly_series
from capport.admin.records import Sample

A = 11
B = 12
NOW = 1_000 * HOUR + 1800.0  # half past an hour


def test_series_has_one_point_per_hour() -> None:
    points = hourly_series([], [], NOW, 24)
    assert len(points) == 24
    assert points[-1].start == 1_000 * HOUR
    assert points[0].start == (1_000 - 23) * HOUR


def test_series_takes_most_active_sessions_of_hour() -> None:
    samples = [Sample(NOW - 600, 3, 0), Sample(NOW - 300, 5, 0), Sample(NOW, 4, 0)]
    assert hourly_series(samples, [], NOW, 2)[-1].active_devices == 5


def test_series_without_samples_has_no_active_count() -> None:
    assert hourly_series([], [], NOW, 2)[0].active_devices is None


def test_series_sums_bytes_per_hour() -> None:
    samples = [Sample(NOW - HOUR, 1, 100), Sample(NOW - 60, 1, 20), Sample(NOW, 1, 5)]
    points = hourly_series(samples, [], NOW, 2)
    assert [p.forwarded_bytes for p in points] == [100, 25]


def test_series_counts_logins_by_method() -> None:
    starts = [(NOW - 10, "voucher"), (NOW - 5, "user"), (NOW - 1, "voucher")]
    point = hourly_series([], starts, NOW, 1)[0]
    assert point.logins == 3
    assert point.logins_by_method == {"user": 1, "voucher": 2}


def test_series_ignores_points_outside_window() -> None:
    starts = [(NOW - 5 * HOUR, "user"), (NOW + HOUR, "user")]
    samples = [Sample(NOW - 5 * HOUR, 9, 999)]
    points = hourly_series(samples, starts, NOW, 2)
    assert sum(p.logins for p in points) == 0
    assert sum(p.forwarded_bytes for p in points) == 0


def test_forwarded_counts_growth() -> None:
    assert forwarded_since({A: 100, B: 50}, {A: 150, B: 50}) == 50


def test_forwarded_counts_new_session_whole() -> None:
    assert forwarded_since({A: 100}, {A: 100, B: 70}) == 70


def test_forwarded_counts_restarted_counter_whole() -> None:
    assert forwarded_since({A: 1000}, {A: 30}) == 30


def test_forwarded_ignores_departed_session() -> None:
    assert forwarded_since({A: 1000, B: 5}, {B: 5}) == 0
