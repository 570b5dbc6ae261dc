"""RADIUS accounting of the sessions RADIUS granted: Start, Interim-Update, Stop.

The usage of every device comes from one reading of the firewall's
counters, so an interim pass costs one listing of the table however many
sessions are due. Requests are sent in background tasks: a slow or absent
accounting server never delays a login, a logout or an expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from capport.auth.entitlement import Method
from capport.auth.radius.client import RadiusClient
from capport.auth.radius.packets import (
    AccessLimits,
    AccountingRecord,
    AccountingStatus,
    terminate_cause,
)
from capport.errors import CapportError
from capport.models import Device, Session

log = logging.getLogger("capport.radius")

# Seconds the daemon waits for outstanding Stop records when it shuts down.
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Usage:
    """Traffic of one device since its grant, in the NAS's directions.

    Input is what the device sent, output what it received (RFC 2866
    section 5.3 and 5.4).
    """

    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0


# Reads the usage of every authorised device; blocking, so it runs in a thread.
UsageReader = Callable[[], dict[Device, Usage]]


def session_id_for(session: Session) -> str:
    """Return the Acct-Session-Id of session: its start time in µs and its id.

    The start time keeps ids unique when a store is recreated and its
    session ids start again at 1.
    """
    return f"{round(session.started_at * 1_000_000):X}-{session.id:X}"


@dataclass(slots=True)
class _Tracked:
    session: Session
    username: str
    session_id: str
    started: float
    interval: float
    next_interim: float
    classes: tuple[bytes, ...]
    usage: Usage = field(default_factory=Usage)


class RadiusAccounting:
    """Sends the accounting records of RADIUS sessions, as a gateway observer.

    Register it with Gateway.add_observer and keep run() going as a task.
    Before each RADIUS grant, expect() hands over the Access-Accept's
    limits. The grant's session_started() then starts the accounting.

    NOTE: what is tracked lives in memory only. Sessions that outlast a
    restart of the daemon keep their access but get no further records.
    """

    def __init__(
        self,
        client: RadiusClient,
        read_usage: UsageReader,
        interim_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._read_usage = read_usage
        self._interval = interim_interval
        self._clock = clock
        self._tracked: dict[int, _Tracked] = {}
        self._expected: dict[Device, tuple[str, AccessLimits]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    def expect(self, device: Device, username: str, limits: AccessLimits) -> None:
        """Note the limits of an Access-Accept for the grant to device that follows.

        Only the latest Access-Accept per device is kept, so one whose grant
        failed (a device limit, a MAC conflict) is replaced by the next.
        """
        self._expected[device] = (username, limits)

    # Gateway observer

    def session_started(self, session: Session) -> None:
        """Send the Start record of a RADIUS session and account for it from now."""
        if session.method != Method.RADIUS:
            return
        username, limits = self._expected.pop(
            session.device, (session.subject or "", AccessLimits())
        )
        self._track(session, username, limits)

    def _track(self, session: Session, username: str, limits: AccessLimits) -> None:
        # The Access-Accept's Acct-Interim-Interval, if any, replaces the
        # configured interval for this session.
        now = self._clock()
        interval = limits.interim_interval or self._interval
        tracked = _Tracked(
            session=session,
            username=username,
            session_id=session_id_for(session),
            started=now,
            interval=interval,
            next_interim=now + interval,
            classes=limits.classes,
        )
        self._tracked[session.id] = tracked
        self._send(self._record(tracked, "Start"))
        self._changed.set()

    async def session_ending(self, session: Session) -> None:
        """Read the final usage while the device's counters are still in place."""
        tracked = self._tracked.get(session.id)
        if tracked is None:
            return
        # NOTE: this lists the counters of every device, because the enforcer
        # cannot read a single element yet, so a large table delays the end.
        try:
            usage = await self._usage_now()
        except CapportError as error:
            # The session must end regardless; Stop carries the last reading.
            log.error(
                "Reading the final counters of session %s failed: %s",
                tracked.session_id,
                error,
            )
            return
        tracked.usage = usage.get(session.device, tracked.usage)

    def session_ended(self, session: Session, reason: str) -> None:
        """Send the Stop record of session, if it is being accounted."""
        tracked = self._tracked.pop(session.id, None)
        if tracked is None:
            return
        record = self._record(tracked, "Stop", cause=terminate_cause(reason))
        self._send(record)

    # The interim loop

    async def run(self) -> None:
        """Send Interim-Update records as sessions fall due, until cancelled."""
        while True:
            due = [t for t in self._tracked.values() if t.next_interim <= self._clock()]
            if due:
                await self._send_interims(due)
            await self._sleep_until_due()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Wait up to timeout seconds for the records still being sent."""
        if not self._sending:
            return
        _, pending = await asyncio.wait(self._sending, timeout=timeout)
        if pending:
            log.warning(
                "Gave up waiting for %d RADIUS accounting records at shutdown.",
                len(pending),
            )
            for task in pending:
                task.cancel()

    async def _send_interims(self, due: list[_Tracked]) -> None:
        try:
            usage = await self._usage_now()
        except CapportError as error:
            log.error("Reading the counters for RADIUS accounting failed: %s", error)
            usage = {}
        now = self._clock()
        for tracked in due:
            if tracked.session.id not in self._tracked:
                continue
            tracked.usage = usage.get(tracked.session.device, tracked.usage)
            tracked.next_interim = now + tracked.interval
            self._send(self._record(tracked, "Interim-Update"))

    async def _sleep_until_due(self) -> None:
        self._changed.clear()
        deadlines = [t.next_interim for t in self._tracked.values()]
        delay = min(deadlines) - self._clock() if deadlines else None
        if delay is not None and delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), delay)

    async def _usage_now(self) -> dict[Device, Usage]:
        return await asyncio.to_thread(self._read_usage)

    # Records and sending

    def _record(
        self, tracked: _Tracked, status: AccountingStatus, cause: str | None = None
    ) -> AccountingRecord:
        usage = tracked.usage
        return AccountingRecord(
            status=status,
            session_id=tracked.session_id,
            username=tracked.username,
            device=tracked.session.device,
            session_time=int(self._clock() - tracked.started),
            input_octets=usage.input_octets,
            output_octets=usage.output_octets,
            input_packets=usage.input_packets,
            output_packets=usage.output_packets,
            terminate_cause=cause,
            classes=tracked.classes,
        )

    def _send(self, record: AccountingRecord) -> None:
        task = asyncio.create_task(self._deliver(record))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, record: AccountingRecord) -> None:
        try:
            await self._client.account(record)
        except CapportError as error:
            # NOTE: a record that no server acknowledged is lost, because
            # nothing queues it for a later retry.
            log.error(
                "RADIUS accounting %s of session %s for %r was not acknowledged: %s",
                record.status,
                record.session_id,
                record.username,
                error,
            )
