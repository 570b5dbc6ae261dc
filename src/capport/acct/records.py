"""The accounting record of one ended session, and its CSV form.

Pure values and text, no I/O: the store keeps the records, the recorder
writes them as sessions end, and the command line and the admin API
export them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from capport.config import parse_duration
from capport.models import Session

CSV_COLUMNS = (
    "session",
    "mac",
    "ip",
    "method",
    "subject",
    "started",
    "ended",
    "duration_seconds",
    "bytes_up",
    "bytes_down",
    "end_reason",
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    """One ended session with its traffic, copied so it outlives the session row.

    Times are seconds since the Unix epoch. bytes_up is what the device
    sent and bytes_down what it received.
    """

    session_id: int
    mac: str
    ip: str
    method: str
    subject: str | None
    started_at: float
    ended_at: float
    bytes_up: int
    bytes_down: int
    end_reason: str

    @classmethod
    def from_session(
        cls,
        session: Session,
        reason: str,
        ended_at: float,
        bytes_up: int = 0,
        bytes_down: int = 0,
    ) -> AccountingRecord:
        return cls(
            session.id,
            session.device.mac,
            str(session.device.ip),
            session.method,
            session.subject,
            session.started_at,
            session.ended_at if session.ended_at is not None else ended_at,
            bytes_up,
            bytes_down,
            reason,
        )

    @property
    def duration(self) -> float:
        """The seconds from start to end, never negative."""
        return max(0.0, self.ended_at - self.started_at)


def render_csv(records: Iterable[AccountingRecord]) -> str:
    """Return the records as CSV text with a header row, times in UTC."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(csv_row(record))
    return output.getvalue()


def csv_row(record: AccountingRecord) -> list[str]:
    """Return one record as the CSV_COLUMNS values."""
    return [
        str(record.session_id),
        record.mac,
        record.ip,
        record.method,
        _safe_cell(record.subject or ""),
        iso_time(record.started_at),
        iso_time(record.ended_at),
        str(round(record.duration)),
        str(record.bytes_up),
        str(record.bytes_down),
        record.end_reason,
    ]


def iso_time(timestamp: float) -> str:
    """Return a UTC time such as 2026-12-04T16:50:01Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, now: float) -> float:
    """Convert a time given on the command line or in a query to epoch seconds.

    Accepts an ISO 8601 date or date and time (UTC unless it carries an
    offset), epoch seconds, or a duration ago such as "7d" or "12h".
    """
    text = value.strip()
    if re.fullmatch(r"\d{9,}(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"\d+(\.\d+)?\s*[smhd]", text):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {value!r}: expected a date such as 2026-12-01, a "
            'date and time such as 2026-12-01T08:00, or a duration ago such as "7d"'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _safe_cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with =, +, - or @ as a formula,
    # and user names are chosen by guests' operators, not by capport.
    if text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text
