"""The hourly series behind /api/v1/history, and the sampler that feeds them.

Every minute the sampler stores how many sessions are active and how many
bytes they forwarded since the last sample, from the gateway's accounting
pass, and deletes samples older than the retention. The hourly series are
computed from those samples and from the sessions' start times.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from capport.admin.records import Sample
from capport.errors import CapportError
from capport.gateway import Gateway
from capport.metrics import FORWARDED_BYTES
from capport.store.base import Store

log = logging.getLogger("capport.admin")

HOUR = 3600.0
SAMPLE_INTERVAL = 60.0

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class HourPoint:
    """One hour of the series, starting at start (seconds since the epoch).

    active_devices is the largest number of active sessions sampled in the
    hour, or None when no sample was taken in it.
    """

    start: float
    active_devices: int | None
    logins: int
    logins_by_method: dict[str, int]
    forwarded_bytes: int


def hourly_series(
    samples: list[Sample],
    starts: list[tuple[float, str]],
    now: float,
    hours: int,
) -> list[HourPoint]:
    """Group samples and session starts into the last hours whole hours.

    The last point is the current, unfinished hour.
    """
    first = (math.floor(now / HOUR) - hours + 1) * HOUR
    active: dict[int, int] = {}
    traffic: Counter[int] = Counter()
    for sample in samples:
        index = int((sample.taken_at - first) // HOUR)
        if 0 <= index < hours:
            active[index] = max(active.get(index, 0), sample.active_sessions)
            traffic[index] += sample.forwarded_bytes
    logins: list[Counter[str]] = [Counter() for _ in range(hours)]
    for started_at, method in starts:
        index = int((started_at - first) // HOUR)
        if 0 <= index < hours:
            logins[index][method] += 1
    return [
        HourPoint(
            start=first + index * HOUR,
            active_devices=active.get(index),
            logins=sum(logins[index].values()),
            logins_by_method=dict(sorted(logins[index].items())),
            forwarded_bytes=traffic[index],
        )
        for index in range(hours)
    ]


def forwarded_since(previous: Mapping[Key, int], current: Mapping[Key, int]) -> int:
    """Return the bytes forwarded between two readings of running totals.

    A total below its previous value was restarted, so all of it is new. A
    key that left between the readings loses what it counted after the
    first one.
    """
    total = 0
    for key, count in current.items():
        before = previous.get(key, 0)
        total += count - before if count >= before else count
    return total


@dataclass
class Sampler:
    """Takes a sample every interval from the sessions' byte totals.

    The totals are those of the gateway's last accounting pass, so a sample
    sees traffic up to one accounting interval late.
    """

    gateway: Gateway
    store: Store
    retention: float
    wall: Callable[[], float] = time.time
    totals: dict[int, int] = field(default_factory=dict)

    async def sample(self) -> Sample:
        """Store one sample of active sessions and forwarded bytes; return it."""
        sessions = self.gateway.sessions()
        current = {}
        for session in sessions:
            total = self.gateway.usage(session).total
            # forwarded_since reads a missing total as zero, so idle sessions
            # take no entry (5 MB for 100,000 kept between samples).
            if total:
                current[session.id] = total
        forwarded = forwarded_since(self.totals, current)
        FORWARDED_BYTES.inc(forwarded)
        self.totals = current
        now = self.wall()
        sample = Sample(now, len(sessions), forwarded)
        await self.store.add_sample(sample, keep_after=now - self.retention)
        return sample

    async def run(self, interval: float = SAMPLE_INTERVAL) -> None:
        """Take a sample every interval seconds, until cancelled."""
        while True:
            try:
                await self.sample()
            except CapportError as error:
                log.error("Taking a history sample failed; retrying: %s", error)
            await asyncio.sleep(interval)
