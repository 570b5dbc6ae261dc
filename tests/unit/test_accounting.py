"""Accounting arithmetic: totals across counter resets, idle and quota decisions."""

import math

import pytest

from capport.accounting import (
    Meter,
    SessionTerms,
    UsageRecord,
    add,
    bytes_left,
    carried_total,
    configured_entitlement,
    exhausted_quota,
    expiry_time,
    is_idle,
    remaining_seconds,
    terms_for,
)
from capport.auth.entitlement import Bandwidth, Entitlement, Quota
from capport.config import SessionSection
from capport.enforce.base import DeviceUsage, Limits, Traffic


def usage(up: int, down: int, **quota_used: int) -> DeviceUsage:
    return DeviceUsage(Traffic(up, down), dict(quota_used))


# Meter


def test_meter_adds_counters_to_base() -> None:
    meter = Meter.start(Traffic(100, 1000), now=0.0).read(usage(5, 50), now=1.0)

    assert meter.total == Traffic(105, 1050)


def test_meter_keeps_total_when_counters_restart() -> None:
    meter = Meter.start(Traffic(), now=0.0)
    meter = meter.read(usage(10, 100), now=1.0)
    meter = meter.read(usage(3, 30), now=2.0)

    assert meter.total == Traffic(13, 130)


def test_meter_without_reading_is_unchanged() -> None:
    meter = Meter.start(Traffic(1, 2), now=0.0)

    assert meter.read(None, now=5.0) == meter


def test_meter_activity_moves_last_active() -> None:
    meter = Meter.start(Traffic(), now=0.0).read(usage(1, 0), now=4.0)

    assert meter.last_active == 4.0


def test_meter_unchanged_counters_keep_last_active() -> None:
    meter = Meter.start(Traffic(), now=0.0).read(usage(1, 0), now=4.0)

    assert meter.read(usage(1, 0), now=9.0).last_active == 4.0


def test_meter_reading_without_change_is_same_meter() -> None:
    meter = Meter.start(Traffic(), now=0.0).read(usage(1, 0, total=5), now=4.0)

    assert meter.read(usage(1, 0, total=5), now=9.0) is meter


def test_meter_reads_new_quota_use() -> None:
    meter = Meter.start(Traffic(), now=0.0).read(usage(1, 0), now=4.0)

    assert meter.read(usage(1, 0, total=5), now=9.0).quota_used == {"total": 5}


def test_meter_record_holds_total_and_base() -> None:
    meter = Meter.start(Traffic(7, 8), now=0.0).read(usage(1, 2), now=1.0)

    assert meter.record(3) == UsageRecord(3, Traffic(8, 10), Traffic(7, 8))


# Idle


def test_idle_after_timeout_without_traffic() -> None:
    meter = Meter.start(Traffic(), now=10.0)

    assert not is_idle(meter, 6.0, now=15.9)
    assert is_idle(meter, 6.0, now=16.0)


def test_traffic_every_three_seconds_is_not_idle() -> None:
    meter = Meter.start(Traffic(), now=0.0)
    for second in range(3, 60, 3):
        meter = meter.read(usage(second, second), now=float(second))
        assert not is_idle(meter, 6.0, now=second + 2.9)


def test_no_idle_timeout_never_idle() -> None:
    assert not is_idle(Meter.start(Traffic(), now=0.0), None, now=1e9)


# Quotas


@pytest.mark.parametrize(
    ("limits", "traffic", "expected"),
    [
        (Limits(quota_up=100), Traffic(100, 0), "up"),
        (Limits(quota_up=100), Traffic(99, 10_000), None),
        (Limits(quota_down=100), Traffic(0, 100), "down"),
        (Limits(quota_total=100), Traffic(50, 50), "total"),
        (Limits(quota_total=100), Traffic(50, 49), None),
        (Limits(), Traffic(10**12, 10**12), None),
    ],
)
def test_exhausted_quota_from_totals(
    limits: Limits, traffic: Traffic, expected: str | None
) -> None:
    meter = Meter.start(traffic, now=0.0)

    assert exhausted_quota(meter, limits) == expected


def test_exhausted_quota_from_kernel_object() -> None:
    # Bytes passed stop short of the quota; the object counted the drops.
    reading = DeviceUsage(Traffic(0, 999_000), {"down": 1_000_000})
    meter = Meter.start(Traffic(), now=0.0).read(reading, now=1.0)

    assert exhausted_quota(meter, Limits(quota_down=1_000_000)) == "down"


# Carrying totals across a restart


def test_carried_total_without_store_uses_kernel() -> None:
    assert carried_total(None, usage(3, 4)) == Traffic(3, 4)


def test_carried_total_without_kernel_uses_store() -> None:
    stored = UsageRecord(1, Traffic(30, 40), Traffic(10, 10))

    assert carried_total(stored, None) == Traffic(30, 40)


def test_carried_total_adds_kernel_counters_to_base() -> None:
    stored = UsageRecord(1, Traffic(30, 40), Traffic(10, 10))

    assert carried_total(stored, usage(25, 20)) == Traffic(35, 40)


def test_carried_total_with_nothing_is_zero() -> None:
    assert carried_total(None, None) == Traffic()


# Remaining time at start


def remaining(terms: SessionTerms, wall_now: float, boot_now: float) -> float:
    return remaining_seconds(
        started_at=1000.0,
        expires_at=1600.0,
        terms=terms,
        wall_now=wall_now,
        boot_now=boot_now,
        boot_id="boot-1",
    )


SAME_BOOT = SessionTerms(boot_id="boot-1", boot_deadline=700.0)
OTHER_BOOT = SessionTerms(boot_id="boot-0", boot_deadline=700.0)


@pytest.mark.parametrize("wall_now", [1100.0, 1100.0 + 3600, 1100.0 - 3600])
def test_same_boot_ignores_wall_clock(wall_now: float) -> None:
    assert remaining(SAME_BOOT, wall_now, boot_now=200.0) == 500.0


def test_same_boot_past_deadline_is_zero() -> None:
    assert remaining(SAME_BOOT, 1100.0, boot_now=701.0) == 0.0


def test_other_boot_uses_wall_clock() -> None:
    assert remaining(OTHER_BOOT, 1100.0, boot_now=5.0) == 500.0


def test_other_boot_clock_set_back_capped_at_duration() -> None:
    assert remaining(OTHER_BOOT, 1100.0 - 3600, boot_now=5.0) == 600.0


def test_other_boot_clock_set_forward_ends_session() -> None:
    assert remaining(OTHER_BOOT, 1100.0 + 3600, boot_now=5.0) == 0.0


def test_unknown_boot_id_uses_wall_clock() -> None:
    terms = SessionTerms(boot_id="", boot_deadline=700.0)
    result = remaining_seconds(
        started_at=1000.0,
        expires_at=1600.0,
        terms=terms,
        wall_now=1100.0,
        boot_now=200.0,
        boot_id="",
    )

    assert result == 500.0


def test_remaining_of_infinite_deadline_is_zero() -> None:
    terms = SessionTerms(boot_id="boot-1", boot_deadline=math.inf)

    assert remaining(terms, 1100.0, boot_now=200.0) == 0.0


def expiry(terms: SessionTerms, wall_now: float, boot_now: float) -> float:
    return expiry_time(
        expires_at=1600.0,
        terms=terms,
        wall_now=wall_now,
        boot_now=boot_now,
        boot_id="boot-1",
    )


def test_expiry_same_boot_from_boot_deadline() -> None:
    # The wall clock was set back an hour, and by the boot clock the session
    # ran out 45 s ago.
    assert expiry(SAME_BOOT, 1645.0 - 3600, boot_now=745.0) == 1600.0 - 3600


def test_expiry_other_boot_at_stored_expiry() -> None:
    assert expiry(OTHER_BOOT, 1645.0, boot_now=5.0) == 1600.0


def test_expiry_never_after_now() -> None:
    assert expiry(SAME_BOOT, 1645.0, boot_now=690.0) == 1645.0


def test_expiry_of_infinite_deadline_is_now() -> None:
    terms = SessionTerms(boot_id="boot-1", boot_deadline=math.inf)

    assert expiry(terms, 1645.0, boot_now=745.0) == 1645.0


# Entitlements


def test_terms_convert_bits_to_bytes() -> None:
    entitlement = Entitlement(
        "voucher",
        600,
        quota=Quota(up=1, down=2, total=3),
        idle_timeout=60,
        bandwidth=Bandwidth(up=8_000_000, down=16_000_000),
    )

    terms = terms_for(entitlement)

    assert terms.limits == Limits(1, 2, 3, 1_000_000, 2_000_000)
    assert terms.idle_timeout == 60


def test_terms_without_limits_are_empty() -> None:
    assert terms_for(Entitlement("click-through", 600)) == SessionTerms()


def test_configured_entitlement_reads_session_table() -> None:
    section = SessionSection.model_validate(
        {"duration": "1h", "quota_total": "1MB", "bandwidth_down": "10Mbit"}
    )

    entitlement = configured_entitlement(section, "click-through")

    assert entitlement.duration == 3600
    assert entitlement.quota == Quota(total=1_000_000)
    assert entitlement.bandwidth == Bandwidth(down=10_000_000)
    assert entitlement.idle_timeout is None


# Bytes left


def test_bytes_left_under_tightest_quota() -> None:
    meter = Meter.start(Traffic(100, 300), now=0.0)

    assert bytes_left(meter, Limits(quota_down=1000, quota_total=500)) == 100


def test_bytes_left_counts_kernel_drops() -> None:
    reading = DeviceUsage(Traffic(0, 900), {"down": 1000})
    meter = Meter.start(Traffic(), now=0.0).read(reading, now=1.0)

    assert bytes_left(meter, Limits(quota_down=1000)) == 0


def test_bytes_left_without_quota_is_none() -> None:
    assert bytes_left(Meter.start(Traffic(), now=0.0), Limits(rate_up=10)) is None


def test_add_zero_returns_other_count() -> None:
    count = Traffic(5, 7)

    assert add(count, Traffic()) is count
    assert add(Traffic(), count) is count


def test_add_sums_both_directions() -> None:
    assert add(Traffic(5, 7), Traffic(1, 0)) == Traffic(6, 7)


def test_carried_zero_total_is_shared() -> None:
    first = carried_total(None, usage(0, 0))
    second = carried_total(None, None)

    assert first == Traffic()
    assert first is second
