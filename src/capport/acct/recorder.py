"""Writes an accounting record for every session that ends, and prunes old ones.

The recorder is a session observer of the gateway. While a session is
ending, it takes the session's sent and received bytes from the gateway's
last accounting pass, and reads the sent bytes afresh from the kernel's
per-device counters. The kernel drops an element's counter with the
element, so a session that timed out in the kernel first keeps the
accounting pass's count, and the recorder needs no listing of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from capport.acct.records import AccountingRecord
from capport.errors import CapportError
from capport.models import Device, Session
from capport.store.base import Store

log = logging.getLogger("capport.accounting")

PRUNE_INTERVAL = 86400.0
# Sessions that end together (an expiry pass) share one listing of the
# kernel's counters rather than listing the whole set once each.
COUNTERS_MAX_AGE = 1.0


class ByteCount(Protocol):
    @property
    def bytes(self) -> int: ...


class SessionTraffic(Protocol):
    @property
    def up(self) -> int: ...

    @property
    def down(self) -> int: ...


CountersSource = Callable[[], Mapping[Device, ByteCount]]
# A session's sent and received bytes as of the gateway's last accounting pass.
UsageSource = Callable[[Session], SessionTraffic]


class AccountingRecorder:
    """Stores one AccountingRecord per ended session and prunes expired ones."""

    def __init__(
        self,
        store: Store,
        retention: float,
        *,
        counters: CountersSource | None = None,
        usage: UsageSource | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._retention = retention
        self._counters = counters
        self._usage = usage
        self._wall = wall
        self._monotonic = monotonic
        # Sent and received bytes of the sessions being ended, by session id.
        self._traffic: dict[int, tuple[int, int]] = {}
        self._snapshot: Mapping[Device, ByteCount] = {}
        self._snapshot_at = float("-inf")
        # Drops the snapshot once it is too old to be used again. Otherwise
        # it stays until the next session ends, and the counters of 100,000
        # devices take 29 MB.
        self._snapshot_expiry: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    # SessionObserver

    def session_started(self, session: Session) -> None:
        """Do nothing: a record is written only when the session ends."""

    async def session_ending(self, session: Session) -> None:
        counters = await self._read_counters(max_age=COUNTERS_MAX_AGE)
        count = counters.get(session.device)
        up = count.bytes if count is not None else 0
        down = 0
        if self._usage is not None:
            # NOTE: received bytes are as of the last accounting pass, so the
            # traffic since then (at most session.accounting_interval) is lost.
            traffic = self._usage(session)
            up = max(up, traffic.up)
            down = traffic.down
        if count is not None or self._usage is not None:
            self._traffic[session.id] = (up, down)

    def session_ended(self, session: Session, reason: str) -> None:
        # A session ended at start-up, while the daemon was down, was never
        # ending here and has no traffic to record.
        traffic = self._traffic.pop(session.id, (0, 0))
        record = AccountingRecord.from_session(
            session,
            reason,
            self._wall(),
            bytes_up=traffic[0],
            bytes_down=traffic[1],
        )
        task = asyncio.get_running_loop().create_task(self._write(record))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # Background work

    async def run(self, interval: float = PRUNE_INTERVAL) -> None:
        """Prune old records now and every interval seconds, until cancelled."""
        while True:
            await self.prune()
            await asyncio.sleep(interval)

    async def prune(self) -> int:
        """Delete the records older than the retention period; return how many."""
        before = self._wall() - self._retention
        try:
            removed = await self._store.prune_accounting(before)
        except CapportError as error:
            log.error("Pruning accounting records failed: %s", error)
            return 0
        if removed:
            log.info(
                "Pruned %d accounting records that ended before the retention "
                "period of %.0f days.",
                removed,
                self._retention / 86400,
                extra={"pruned": removed},
            )
        return removed

    async def close(self) -> None:
        """Wait for the records still being written."""
        self._forget_snapshot()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # Helpers

    async def _read_counters(self, max_age: float) -> Mapping[Device, ByteCount]:
        if self._counters is None:
            return {}
        if self._monotonic() - self._snapshot_at <= max_age:
            return self._snapshot
        try:
            self._snapshot = await asyncio.to_thread(self._counters)
        except CapportError as error:
            log.warning("Reading the traffic counters failed: %s", error)
            return {}
        self._snapshot_at = self._monotonic()
        if self._snapshot_expiry is not None:
            self._snapshot_expiry.cancel()
        self._snapshot_expiry = asyncio.get_running_loop().call_later(
            max_age, self._forget_snapshot
        )
        return self._snapshot

    def _forget_snapshot(self) -> None:
        if self._snapshot_expiry is not None:
            self._snapshot_expiry.cancel()
        self._snapshot = {}
        self._snapshot_at = float("-inf")
        self._snapshot_expiry = None

    async def _write(self, record: AccountingRecord) -> None:
        try:
            await self._store.add_accounting_record(record)
        except CapportError as error:
            log.error(
                "Storing the accounting record of session %d failed: %s",
                record.session_id,
                error,
                extra={"session": record.session_id},
            )
