"""Accounting records: building one from a session, CSV and time parsing."""

from __future__ import annotations

import csv
import io

import pytest

from capport.acct.records import CSV_COLUMNS, AccountingRecord, parse_time, render_csv
from capport.models import Device, Session

NOW = 1_796_400_000.0  # 2026-12-04T16:00:00Z
DEVICE = Device.parse("02:00:00:00:00:11", "192.0.2.11")


def record(**changes: object) -> AccountingRecord:
    values: dict[str, object] = {
        "session_id": 3,
        "mac": DEVICE.mac,
        "ip": "192.0.2.11",
        "method": "user",
        "subject": "alice",
        "started_at": NOW - 3600,
        "ended_at": NOW,
        "bytes_up": 1234,
        "bytes_down": 0,
        "end_reason": "revoked",
    }
    values.update(changes)
    return AccountingRecord(**values)  # type: ignore[arg-type]


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_record_from_ended_session() -> None:
    session = Session(3, DEVICE, "user", NOW - 60, NOW + 600, NOW, "revoked", "alice")
    made = AccountingRecord.from_session(session, "revoked", NOW + 5, bytes_up=9)
    assert made.ended_at == NOW
    assert made.duration == 60
    assert made.subject == "alice"
    assert made.bytes_up == 9


def test_record_from_active_session_uses_end_time() -> None:
    session = Session(3, DEVICE, "click-through", NOW - 60, NOW + 600)
    made = AccountingRecord.from_session(session, "expired", NOW)
    assert made.ended_at == NOW
    assert made.end_reason == "expired"


def test_csv_header_row() -> None:
    assert rows(render_csv([]))[0] == list(CSV_COLUMNS)


def test_csv_record_row() -> None:
    assert rows(render_csv([record()]))[1] == [
        "3",
        "02:00:00:00:00:11",
        "192.0.2.11",
        "user",
        "alice",
        "2026-12-04T15:00:00Z",
        "2026-12-04T16:00:00Z",
        "3600",
        "1234",
        "0",
        "revoked",
    ]


def test_csv_click_through_subject_empty() -> None:
    assert rows(render_csv([record(subject=None)]))[1][4] == ""


@pytest.mark.parametrize("subject", ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)"])
def test_csv_formula_subject_defused(subject: str) -> None:
    cell = rows(render_csv([record(subject=subject)]))[1][4]
    assert cell == "'" + subject


def test_csv_comma_subject_quoted() -> None:
    text = render_csv([record(subject='a,"b"')])
    assert rows(text)[1][4] == 'a,"b"'


def test_parse_time_date_is_utc_midnight() -> None:
    assert parse_time("2026-12-04", NOW) == NOW - 16 * 3600


def test_parse_time_date_and_time() -> None:
    assert parse_time("2026-12-04T16:00", NOW) == NOW


def test_parse_time_with_offset() -> None:
    assert parse_time("2026-12-04T17:00+01:00", NOW) == NOW


def test_parse_time_z_suffix() -> None:
    assert parse_time("2026-12-04T16:00:00Z", NOW) == NOW


def test_parse_time_duration_ago() -> None:
    assert parse_time("7d", NOW) == NOW - 7 * 86400


def test_parse_time_epoch_seconds() -> None:
    assert parse_time("1796400000", 0) == NOW


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-01", "-5d"])
def test_parse_time_invalid(value: str) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_time(value, NOW)
