"""Session limits and accounting arithmetic, free of I/O.

The kernel counts each device's bytes in both directions and enforces its
quotas and rates itself. A periodic accounting pass reads those counters.
From one reading, the functions here compute how many bytes a session has
used in all, whether it has been idle too long, and whether a quota is
exhausted.

A session's elements, and with them their counters, are created again at
zero whenever the table is rebuilt (at every start and reload). A Meter
therefore keeps a base, the session's total when the current counters
started, and adds the counters to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from capport.auth.entitlement import Bandwidth, Entitlement, Quota
from capport.config import SessionSection
from capport.enforce.base import NO_QUOTAS_USED, DeviceUsage, Limits, Traffic

BITS_PER_BYTE = 8


@dataclass(frozen=True, slots=True)
class SessionTerms:
    """What a session's entitlement limits, in the units the kernel takes.

    Rates in limits are bytes per second. boot_id and boot_deadline record
    the end of the session on the kernel's CLOCK_BOOTTIME, which no change
    of the wall clock moves. Both are None for sessions stored without them.
    """

    limits: Limits = Limits()
    idle_timeout: float | None = None
    boot_id: str | None = None
    boot_deadline: float | None = None


def terms_for(entitlement: Entitlement) -> SessionTerms:
    """Translate an entitlement's limits into SessionTerms without boot times."""
    quota = entitlement.quota
    bandwidth = entitlement.bandwidth
    limits = Limits(
        quota_up=quota.up if quota else None,
        quota_down=quota.down if quota else None,
        quota_total=quota.total if quota else None,
        rate_up=_bytes_per_second(bandwidth.up if bandwidth else None),
        rate_down=_bytes_per_second(bandwidth.down if bandwidth else None),
    )
    return SessionTerms(limits=limits, idle_timeout=entitlement.idle_timeout)


def configured_entitlement(section: SessionSection, method: str) -> Entitlement:
    """Build the entitlement of the `[session]` table, for the given method."""
    quotas = (section.quota_up, section.quota_down, section.quota_total)
    rates = (section.bandwidth_up, section.bandwidth_down)
    return Entitlement(
        method=method,
        duration=section.duration,
        quota=Quota(*quotas) if any(q is not None for q in quotas) else None,
        idle_timeout=section.idle_timeout,
        bandwidth=Bandwidth(*rates) if any(r is not None for r in rates) else None,
    )


def _bytes_per_second(bits_per_second: int | None) -> int | None:
    if bits_per_second is None:
        return None
    return max(1, bits_per_second // BITS_PER_BYTE)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """A session's bytes as the store keeps them.

    total counts every byte since the session started, and base is the total
    at the moment the kernel's current counters started at zero.
    """

    session_id: int
    total: Traffic
    base: Traffic


# Shared by every meter without traffic or quota readings, so 100,000 idle
# sessions do not each keep a zero Traffic and an empty dict.
_ZERO = Traffic()


@dataclass(frozen=True, slots=True)
class Meter:
    """The running account of one session.

    counters is the last reading of the kernel's counters, and last_active
    the monotonic time at which they last changed (or the session started).
    """

    base: Traffic
    counters: Traffic
    last_active: float
    quota_used: Mapping[str, int]

    @classmethod
    def start(cls, total: Traffic, now: float) -> Meter:
        """Begin metering a session whose counters start at zero now."""
        return cls(
            base=total, counters=_ZERO, last_active=now, quota_used=NO_QUOTAS_USED
        )

    @property
    def total(self) -> Traffic:
        return add(self.base, self.counters)

    def read(self, usage: DeviceUsage | None, now: float) -> Meter:
        """Return the meter after one reading of the kernel, or None for no element.

        A counter that went down means the element was created again, by a
        grant or a rebuild the meter did not see. Its new value then counts
        on top of the total so far.
        """
        if usage is None:
            return self
        counters = usage.traffic
        if counters == self.counters and usage.quota_used == self.quota_used:
            # Nothing moved: the same meter, so an idle pass allocates nothing.
            return self
        base = self.base
        if counters.up < self.counters.up or counters.down < self.counters.down:
            base = self.total
        moved = counters != self.counters
        return Meter(
            base=base,
            counters=counters,
            last_active=now if moved else self.last_active,
            quota_used=dict(usage.quota_used) if usage.quota_used else NO_QUOTAS_USED,
        )

    def record(self, session_id: int) -> UsageRecord:
        return UsageRecord(session_id, self.total, self.base)


def add(first: Traffic, second: Traffic) -> Traffic:
    """Return the sum of two counts, which is one of them when the other is zero.

    Traffic is immutable, so the totals of idle sessions, which the history
    sampler and the client list read for every session, allocate nothing.
    """
    if second.up == 0 and second.down == 0:
        return first
    if first.up == 0 and first.down == 0:
        return second
    return Traffic(first.up + second.up, first.down + second.down)


def is_idle(meter: Meter, idle_timeout: float | None, now: float) -> bool:
    """Tell whether no byte moved in either direction for idle_timeout seconds."""
    if idle_timeout is None:
        return False
    return now - meter.last_active >= idle_timeout


def exhausted_quota(meter: Meter, limits: Limits) -> str | None:
    """Return "up", "down" or "total" for the first quota used up, else None.

    The kernel's quota object counts the packets it dropped as well, so it
    reaches its limit even when the bytes that passed stop just short of
    it. The totals are checked too, for quotas whose object is gone.
    """
    totals = meter.total
    checks = [
        ("up", limits.quota_up, totals.up),
        ("down", limits.quota_down, totals.down),
        ("total", limits.quota_total, totals.total),
    ]
    for direction, quota, passed in checks:
        if quota is None:
            continue
        used = max(meter.quota_used.get(direction, 0), passed)
        if used >= quota:
            return direction
    return None


def bytes_left(meter: Meter, limits: Limits) -> int | None:
    """Return the bytes left under the tightest quota, or None without quotas.

    As of the last accounting pass, so the kernel may have counted more.
    """
    totals = meter.total
    checks = [
        ("up", limits.quota_up, totals.up),
        ("down", limits.quota_down, totals.down),
        ("total", limits.quota_total, totals.total),
    ]
    left = [
        quota - max(meter.quota_used.get(direction, 0), passed)
        for direction, quota, passed in checks
        if quota is not None
    ]
    return max(0, min(left)) if left else None


def carried_total(stored: UsageRecord | None, kernel: DeviceUsage | None) -> Traffic:
    """Return a session's total at start, from the store and the old table.

    The store contains the total of the last accounting pass. The table left
    by the previous run (if the kernel still has it) counted on from the
    stored base, so base plus its counters includes the bytes after that
    pass. The larger of the two is the better account. A total of zero is
    one shared Traffic, because a start keeps every session's total until
    its meter starts.
    """
    if stored is None:
        if kernel is None or kernel.traffic.total == 0:
            return _ZERO
        return kernel.traffic
    if kernel is None:
        return stored.total
    since_base = add(stored.base, kernel.traffic)
    return Traffic(
        max(stored.total.up, since_base.up), max(stored.total.down, since_base.down)
    )


def remaining_seconds(
    *,
    started_at: float,
    expires_at: float,
    terms: SessionTerms,
    wall_now: float,
    boot_now: float,
    boot_id: str,
) -> float:
    """Return how long a stored session still has at start, never negative.

    Within one boot, the deadline on CLOCK_BOOTTIME decides, and a
    wall-clock change in either direction has no effect. After a reboot
    only the wall clock is left. Then the result is capped at the session's
    granted duration, so a clock set back cannot extend a session beyond what was
    granted, and a clock set forward ends it early, which is the safer
    error for a gateway.
    """
    duration = expires_at - started_at
    remaining = _seconds_to_end(expires_at, terms, wall_now, boot_now, boot_id)
    if not math.isfinite(remaining):
        return 0.0
    return max(0.0, min(remaining, duration))


def expiry_time(
    expires_at: float,
    terms: SessionTerms,
    wall_now: float,
    boot_now: float,
    boot_id: str,
) -> float:
    """Return the wall-clock time at which a session's time ran out.

    The clocks decide as in remaining_seconds, so for a session that ran
    out while the daemon was down this is its expiry, not the restart. The
    result is never later than wall_now.
    """
    remaining = _seconds_to_end(expires_at, terms, wall_now, boot_now, boot_id)
    if not math.isfinite(remaining):
        return wall_now
    return min(wall_now, wall_now + remaining)


def _seconds_to_end(
    expires_at: float,
    terms: SessionTerms,
    wall_now: float,
    boot_now: float,
    boot_id: str,
) -> float:
    """Return the seconds until the session's end, negative once it has passed."""
    same_boot = bool(boot_id) and terms.boot_id == boot_id
    if same_boot and terms.boot_deadline is not None:
        return terms.boot_deadline - boot_now
    return expires_at - wall_now


def with_boot_deadline(
    terms: SessionTerms, boot_id: str, boot_now: float, duration: float
) -> SessionTerms:
    return replace(terms, boot_id=boot_id, boot_deadline=boot_now + duration)
