"""The running accounts of the active sessions, free of I/O.

The gateway keeps one Meter and the SessionTerms of every active session
here. An accounting pass hands in one reading of the kernel's counters and
gets back the sessions to end and why, and the usage rows the store must
write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from capport import accounting
from capport.accounting import Meter, SessionTerms, UsageRecord
from capport.enforce.base import DeviceUsage, Traffic
from capport.models import Device, EndReason, Session

log = logging.getLogger("capport.gateway")

_NOTHING = Traffic()


class SessionMeters:
    """Terms and meters by session id, and the usage last written to the store."""

    def __init__(self) -> None:
        self._terms: dict[int, SessionTerms] = {}
        self._meters: dict[int, Meter] = {}
        # The meter whose usage was last written to the store, so unchanged
        # rows are skipped. A session without an entry has no row or a row
        # of zeros, which the store reads alike.
        self._stored: dict[int, Meter] = {}
        # Sessions whose meter was started or moved since changed() last ran;
        # the others cannot have changed, so changed() skips them.
        self._dirty: set[int] = set()
        # The meter start() made last. Meters are immutable, so sessions
        # started at the same time with the same total (every session of a
        # reconcile that carried nothing) share it, and 100,000 of them
        # keep one Meter instead of 100,000 (about 9 MB).
        self._last_started: Meter | None = None

    def clear(self) -> None:
        self._terms.clear()
        self._meters.clear()
        self._stored.clear()
        self._dirty.clear()
        self._last_started = None

    def start(
        self, session_id: int, terms: SessionTerms, total: Traffic, now: float
    ) -> None:
        """Begin metering a session whose kernel counters start at zero now."""
        meter = Meter.start(total, now)
        if meter == self._last_started:
            meter = self._last_started
        self._last_started = meter
        self._terms[session_id] = terms
        self._meters[session_id] = meter
        if total.total != 0 or session_id in self._stored:
            # changed() would skip a zero meter without a stored row, so it
            # need not look (a set of 100,000 ids at a start).
            self._dirty.add(session_id)

    def forget(self, session_id: int) -> None:
        self._terms.pop(session_id, None)
        self._meters.pop(session_id, None)
        self._stored.pop(session_id, None)
        self._dirty.discard(session_id)

    def terms(self, session_id: int) -> SessionTerms:
        return self._terms.get(session_id, SessionTerms())

    def total(self, session_id: int) -> Traffic:
        """Return the session's bytes as of the last reading."""
        meter = self._meters.get(session_id)
        return meter.total if meter is not None else Traffic()

    def bytes_left(self, session_id: int) -> int | None:
        """Return the bytes left under the session's quotas, or None without any."""
        meter = self._meters.get(session_id)
        if meter is None:
            return None
        return accounting.bytes_left(meter, self.terms(session_id).limits)

    def record(self, session_id: int) -> UsageRecord | None:
        meter = self._meters.get(session_id)
        return meter.record(session_id) if meter is not None else None

    def read(
        self,
        sessions: Iterable[Session],
        usage: Mapping[Device, DeviceUsage],
        now: float,
    ) -> list[tuple[Session, str]]:
        """Apply one reading of the kernel; return the sessions to end, with why."""
        ending = []
        for session in sessions:
            previous = self._meters.get(session.id)
            if previous is None:
                continue
            meter = previous.read(usage.get(session.device), now)
            if meter is not previous:
                self._meters[session.id] = meter
                self._dirty.add(session.id)
            reason = self._end_reason(session, meter, now)
            if reason is not None:
                ending.append((session, reason))
        return ending

    def changed(self) -> list[UsageRecord]:
        """Return the usage records that changed since this was last called."""
        records = []
        for session_id in sorted(self._dirty):
            meter = self._meters.get(session_id)
            if meter is None:
                continue
            stored = self._stored.get(session_id)
            if stored is None and meter.base == _NOTHING and meter.counters == _NOTHING:
                # A session without a usage row reads as zero usage, so a start
                # with 100,000 sessions that moved nothing writes no rows.
                continue
            if stored is not None and _same_usage(stored, meter):
                continue
            records.append(meter.record(session_id))
            self._stored[session_id] = meter
        self._dirty.clear()
        return records

    def _end_reason(self, session: Session, meter: Meter, now: float) -> str | None:
        terms = self.terms(session.id)
        direction = accounting.exhausted_quota(meter, terms.limits)
        if direction is not None:
            log.info(
                "Session %d of %s used up its %s quota.",
                session.id,
                session.device,
                direction,
            )
            return EndReason.QUOTA
        if accounting.is_idle(meter, terms.idle_timeout, now):
            return EndReason.IDLE
        return None


def _same_usage(first: Meter, second: Meter) -> bool:
    """Tell whether two meters give the same usage row."""
    return first.base == second.base and first.total == second.total
