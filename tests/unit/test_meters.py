"""The session meters' record of which usage rows the store must write."""

from capport.accounting import SessionTerms
from capport.enforce.base import DeviceUsage, Traffic
from capport.meters import SessionMeters
from capport.models import Device, Session

A = Session(1, Device.parse("02:00:00:00:00:11", "192.0.2.11"), "x", 0.0, 60.0)
B = Session(2, Device.parse("02:00:00:00:00:12", "192.0.2.12"), "x", 0.0, 60.0)


CARRIED = Traffic(3, 4)


def started(total: Traffic = CARRIED) -> SessionMeters:
    meters = SessionMeters()
    meters.start(A.id, SessionTerms(), total, now=0.0)
    meters.start(B.id, SessionTerms(), total, now=0.0)
    return meters


def test_changed_lists_started_sessions_once() -> None:
    meters = started()

    assert [r.session_id for r in meters.changed()] == [A.id, B.id]
    assert meters.changed() == []


def test_changed_skips_started_sessions_without_usage() -> None:
    # The store reads a session without a usage row as zero usage.
    assert started(Traffic()).changed() == []


def test_changed_lists_only_sessions_with_traffic() -> None:
    meters = started()
    meters.changed()
    reading = {A.device: DeviceUsage(Traffic(5, 7)), B.device: DeviceUsage(Traffic())}
    # B's counters stay at zero, so its meter does not move.

    meters.read([A, B], reading, now=1.0)

    assert [r.session_id for r in meters.changed()] == [A.id]


def test_changed_skips_forgotten_session() -> None:
    meters = started()
    meters.forget(A.id)

    assert [r.session_id for r in meters.changed()] == [B.id]


def test_sessions_started_alike_share_one_meter() -> None:
    meters = started(Traffic())

    # Meters are immutable, so sessions may share one.
    assert meters._meters[A.id] is meters._meters[B.id]


def test_shared_meter_read_moves_one_session() -> None:
    meters = started(Traffic())

    meters.read([A, B], {A.device: DeviceUsage(Traffic(5, 7))}, now=1.0)

    assert meters.total(A.id) == Traffic(5, 7)
    assert meters.total(B.id) == Traffic()


def test_changed_lists_moved_zero_session() -> None:
    meters = started(Traffic())
    meters.changed()

    meters.read([A], {A.device: DeviceUsage(Traffic(5, 7))}, now=1.0)

    records = meters.changed()
    assert [r.session_id for r in records] == [A.id]
    assert records[0].total == Traffic(5, 7)


def test_changed_skips_unchanged_usage_row() -> None:
    meters = started()
    meters.changed()
    # Only the quota object moved, so the usage row would be the same.
    reading = DeviceUsage(Traffic(), {"down": 10})

    meters.read([A], {A.device: reading}, now=1.0)

    assert meters.changed() == []


def test_restart_at_zero_after_written_usage_is_written() -> None:
    meters = started()
    meters.changed()

    # The meter of a written session starts again from zero.
    meters.start(A.id, SessionTerms(), Traffic(), now=2.0)

    assert [r.total for r in meters.changed()] == [Traffic()]
