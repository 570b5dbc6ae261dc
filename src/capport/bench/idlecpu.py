"""The CPU share of an idle daemon's accounting passes, read from /proc.

An idle daemon uses almost no CPU between accounting passes, and a pass over
many sessions shows as a burst of CPU time. The daemon's CPU time is sampled
a few times a second, and bursts mark where passes ended. The share is
measured from the end of one pass to the end of a later one, so the window
contains whole cycles (a pass and the rest before it) and no partial one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A sample interval in which the daemon used at least this share of a core
# counts as part of a pass. An idle daemon stays far below it.
BUSY_SHARE = 0.2
# Busy samples closer together than this belong to one pass, because the
# scheduler can leave a pass off the CPU for a sample or two on a busy machine.
MERGE_SECONDS = 2.0
SAMPLE_SECONDS = 0.25
# The daemon's other periodic work shows as small bursts (0.06 s of CPU
# each in a run at 100,000 sessions, against 3.9 s for a pass). Only a
# burst with at least this fraction of the largest burst's CPU time counts
# as an accounting pass.
PASS_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class CpuSample:
    """The process's CPU time in seconds at a monotonic time in seconds."""

    at: float
    cpu: float


@dataclass(frozen=True, slots=True)
class Burst:
    """One pass seen in the samples: when it ended and the CPU it used."""

    end_index: int
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class IdleShare:
    """The daemon's CPU over a window that starts and ends at a pass end."""

    window_seconds: float
    cpu_seconds: float
    passes: int
    pass_cpu_seconds: list[float]
    aligned: bool

    @property
    def share(self) -> float:
        return self.cpu_seconds / self.window_seconds if self.window_seconds else 0.0


def find_bursts(
    samples: Sequence[CpuSample],
    busy_share: float = BUSY_SHARE,
    merge_seconds: float = MERGE_SECONDS,
) -> list[Burst]:
    """Return the finished bursts of CPU use in samples, oldest first.

    Sample i is busy when the interval from sample i - 1 to it is. A burst
    ends at its last busy sample and is reported once merge_seconds pass
    without another, so a burst still running at the end is left out.
    """
    bursts: list[Burst] = []
    start: int | None = None
    last_busy: int | None = None
    for index in range(1, len(samples)):
        before, sample = samples[index - 1], samples[index]
        elapsed = sample.at - before.at
        busy = elapsed > 0 and (sample.cpu - before.cpu) / elapsed >= busy_share
        if busy:
            if start is None:
                start = index - 1
            last_busy = index
            continue
        if last_busy is None or start is None:
            continue
        if sample.at - samples[last_busy].at >= merge_seconds:
            cpu = samples[last_busy].cpu - samples[start].cpu
            bursts.append(Burst(last_busy, cpu))
            start = last_busy = None
    return bursts


def pass_bursts(
    bursts: Sequence[Burst], fraction: float = PASS_FRACTION
) -> list[Burst]:
    """Return the bursts large enough to be accounting passes, oldest first."""
    if not bursts:
        return []
    largest = max(burst.cpu_seconds for burst in bursts)
    return [burst for burst in bursts if burst.cpu_seconds >= fraction * largest]


def summarise(samples: Sequence[CpuSample], bursts: Sequence[Burst]) -> IdleShare:
    """Return the share between the first and last burst ends.

    Without two burst ends the whole sampled span is used, and the result
    is marked as not aligned to passes.
    """
    if len(bursts) >= 2:
        first = samples[bursts[0].end_index]
        last = samples[bursts[-1].end_index]
        counted = [burst.cpu_seconds for burst in bursts[1:]]
        aligned = True
    else:
        first, last = samples[0], samples[-1]
        counted = [burst.cpu_seconds for burst in bursts]
        aligned = False
    return IdleShare(
        window_seconds=last.at - first.at,
        cpu_seconds=last.cpu - first.cpu,
        passes=len(counted),
        pass_cpu_seconds=counted,
        aligned=aligned,
    )


def measure_idle_share(
    read_cpu: Callable[[], float],
    first_pass_timeout: float,
    window_for: Callable[[float], float],
    passes: int = 2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> IdleShare:
    """Sample read_cpu until passes whole cycles follow a first pass end.

    window_for maps the CPU seconds of the first pass seen to the maximum
    time to wait for the cycles after it. Sampling lasts first_pass_timeout
    at least, and with no pass in that time the share over it is returned.
    """
    samples: list[CpuSample] = []
    first_deadline = clock() + first_pass_timeout
    while True:
        samples.append(CpuSample(clock(), read_cpu()))
        found = pass_bursts(find_bursts(samples))
        if len(found) > passes:
            break
        deadline = first_deadline
        if found:
            # A larger burst later can drop the first one, so this is
            # computed again from the passes found so far.
            first = found[0]
            window_end = samples[first.end_index].at + window_for(first.cpu_seconds)
            deadline = max(first_deadline, window_end)
        if clock() >= deadline:
            break
        sleep(SAMPLE_SECONDS)
    return summarise(samples, pass_bursts(find_bursts(samples)))
