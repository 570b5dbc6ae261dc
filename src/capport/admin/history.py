"""The hourly series behind /api/v1/history, and the sampler that feeds them.

Every minute the sampler lists the kernel's per-device counters, stores how
many sessions are active and how many bytes the devices sent since the last
sample, and deletes samples older than the retention. The hourly series are
computed from those samples and from the sessions' start times.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from capport.admin.records import Sample
from capport.errors import CapportError
from capport.gateway import Gateway
from capport.metrics import ACCOUNTING_PASS_SECONDS, FORWARDED_BYTES
from capport.models import Device
from capport.store.base import Store

log = logging.getLogger("capport.admin")

HOUR = 3600.0
SAMPLE_INTERVAL = 60.0

# Bytes each authorised device has sent, as the kernel's element counters
# have them.
CounterReader = Callable[[], Mapping[Device, int]]


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


def forwarded_since(
    previous: Mapping[Device, int], current: Mapping[Device, int]
) -> int:
    """Return the bytes forwarded between two listings of the counters.

    A counter below its previous value was restarted (the element was
    replaced by a new grant or an extension), so all of it is new. A device
    that left the set between the listings loses what it sent after the
    first one.
    """
    total = 0
    for device, count in current.items():
        before = previous.get(device, 0)
        total += count - before if count >= before else count
    return total


@dataclass
class Sampler:
    """Takes a sample every interval, and keeps the last counters for the API."""

    gateway: Gateway
    store: Store
    read_counters: CounterReader | None
    retention: float
    wall: Callable[[], float] = time.time
    device_bytes: dict[Device, int] = field(default_factory=dict)
    listed_at: float | None = None

    async def sample(self) -> Sample:
        """List the counters, store one sample and return it.

        NOTE: RADIUS accounting lists the same counters on its own interval.
        Each listing of 100,000 devices takes about 2.5 s (nftables 1.0.6),
        so sharing one listing would halve that cost on large gateways.
        """
        current: Mapping[Device, int] = {}
        if self.read_counters is not None:
            with ACCOUNTING_PASS_SECONDS.time():
                current = await asyncio.to_thread(self.read_counters)
        forwarded = forwarded_since(self.device_bytes, current)
        FORWARDED_BYTES.inc(forwarded)
        self.device_bytes = dict(current)
        now = self.wall()
        self.listed_at = now
        sample = Sample(now, len(self.gateway.sessions()), forwarded)
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
