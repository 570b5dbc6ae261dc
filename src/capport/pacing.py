"""The delay between accounting passes, stretched to bound their CPU share.

An accounting pass reads every device's counters, so its CPU cost grows with
the number of sessions (about 4 s at 100,000 sessions on a 2-core test
machine, measured with `capport bench`). After each pass the next one waits
the configured interval, or CPU_FACTOR times the CPU time the last pass used
if that is longer. A pass of cost c is then followed by at least
CPU_FACTOR * c of rest, so accounting uses at most
c / (c + CPU_FACTOR * c) = 1 / (CPU_FACTOR + 1) of one core, under 4 % with
a factor of 25. Small sites keep the configured interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# 1 / (25 + 1) is 3.8 % of one core, which leaves room under a 5 % target
# for the rest of the daemon's idle work.
CPU_FACTOR = 25.0


@dataclass(frozen=True, slots=True)
class PassRecord:
    """The CPU time of one accounting pass and the delay it set for the next."""

    cpu_seconds: float
    interval: float
    stretched: bool
    changed: bool


class AccountingPacer:
    """A pacer that measures each accounting pass and sets the next delay.

    cpu_clock returns the process's CPU time in seconds. The pass does its
    kernel listing in a worker thread, so a per-thread clock would miss most
    of it. NOTE: process time also counts other work done during the pass,
    such as concurrent logins, so under load the measured cost, and the
    delay, can be higher than the pass alone needs.
    """

    def __init__(
        self,
        configured: float,
        factor: float = CPU_FACTOR,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.configured = configured
        self.factor = factor
        self.interval = configured
        self.last_cpu_seconds: float | None = None
        self.passes = 0
        self._cpu_clock = cpu_clock
        self._started: float | None = None

    @property
    def stretched(self) -> bool:
        """Whether the effective interval is longer than the configured one."""
        return self.interval > self.configured

    def start_pass(self) -> None:
        self._started = self._cpu_clock()

    def end_pass(self) -> PassRecord:
        """Record the CPU time since start_pass and set the next interval."""
        if self._started is None:
            raise RuntimeError("end_pass called without start_pass")
        cpu_seconds = max(0.0, self._cpu_clock() - self._started)
        self._started = None
        was_stretched = self.stretched
        self.interval = max(self.configured, self.factor * cpu_seconds)
        self.last_cpu_seconds = cpu_seconds
        self.passes += 1
        return PassRecord(
            cpu_seconds=cpu_seconds,
            interval=self.interval,
            stretched=self.stretched,
            changed=self.stretched != was_stretched,
        )
