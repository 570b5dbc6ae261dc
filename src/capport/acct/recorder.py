"""Writes an accounting record for every session that ends, and prunes old ones.

The recorder is a session observer of the gateway. The forward chain's
per-device counters count what a device sends, and the kernel drops them
with the element, so the recorder reads them while a session is ending.
A session whose element timed out in the kernel before the daemon ended it
gets the count of the history sampler's last listing, which runs every
minute, so no second periodic listing of the whole set is needed.
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


CountersSource = Callable[[], Mapping[Device, ByteCount]]
# Bytes each device had sent at the last periodic listing of the counters.
SampledBytes = Callable[[], Mapping[Device, int]]


class AccountingRecorder:
    """Stores one AccountingRecord per ended session and prunes expired ones."""

    def __init__(
        self,
        store: Store,
        retention: float,
        *,
        counters: CountersSource | None = None,
        sampled: SampledBytes | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._retention = retention
        self._counters = counters
        self._sampled = sampled
        self._wall = wall
        self._monotonic = monotonic
        self._bytes_up: dict[int, int] = {}
        self._snapshot: Mapping[Device, ByteCount] = {}
        self._snapshot_at = float("-inf")
        self._writes: set[asyncio.Task[None]] = set()

    # SessionObserver

    def session_started(self, session: Session) -> None:
        """Do nothing: a record is written only when the session ends."""

    async def session_ending(self, session: Session) -> None:
        counters = await self._read_counters(max_age=COUNTERS_MAX_AGE)
        count = counters.get(session.device)
        if count is not None:
            self._bytes_up[session.id] = count.bytes

    def session_ended(self, session: Session, reason: str) -> None:
        bytes_up = self._bytes_up.pop(session.id, None)
        if bytes_up is None:
            # The kernel dropped the element before the session ended here.
            sampled = self._sampled() if self._sampled is not None else {}
            bytes_up = sampled.get(session.device, 0)
        record = AccountingRecord.from_session(
            session,
            reason,
            self._wall(),
            bytes_up=bytes_up,
            # NOTE: the firewall counts only what a device sends, so the
            # received bytes are 0 until per-direction counters exist.
            bytes_down=0,
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
        return self._snapshot

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
