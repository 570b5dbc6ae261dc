"""Memory and CPU time of the processes under test, read from /proc."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from capport.bench.parsing import (
    CpuKinds,
    parse_cpu_kinds,
    parse_cpu_ticks,
    parse_cpu_times,
    parse_status_kilobytes,
)
from capport.bench.testbed import BenchError, read_proc

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def rss_megabytes(pid: int) -> float:
    """Return the resident set size of pid (VmRSS) in MB (10^6 bytes)."""
    return parse_status_kilobytes(read_proc(pid, "status"), "VmRSS") * 1024 / 1e6


def peak_rss_megabytes(pid: int) -> float:
    """Return the largest resident set size pid has had (VmHWM) in MB."""
    return parse_status_kilobytes(read_proc(pid, "status"), "VmHWM") * 1024 / 1e6


def cpu_seconds(pid: int) -> float:
    """Return the user and system CPU time of pid and its direct children.

    nginx does its work in a worker process under its master, so the
    children count as part of the server.
    """
    total = parse_cpu_ticks(read_proc(pid, "stat"))
    for child in _children(pid):
        try:
            total += parse_cpu_ticks(read_proc(child, "stat"))
        except (BenchError, ValueError):
            # A child may exit between the two reads.
            continue
    return total / _TICKS_PER_SECOND


def cpu_times() -> dict[int, tuple[int, int]]:
    """Return (busy, total) clock ticks of every CPU of the machine."""
    return parse_cpu_times(Path("/proc/stat").read_text())


def cpu_kinds() -> dict[int, CpuKinds]:
    """Return the user, system and interrupt ticks of every CPU of the machine."""
    return parse_cpu_kinds(Path("/proc/stat").read_text())


def ticks_to_seconds(ticks: int) -> float:
    return ticks / _TICKS_PER_SECOND


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(word) for word in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


class RssSampler:
    """Samples a process's resident memory in a thread, keeping the largest.

    Use as a context manager around the load; peak_megabytes is the largest
    VmRSS seen, sampled every interval seconds.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.samples: list[float] = []

    @property
    def peak_megabytes(self) -> float:
        return max(self.samples, default=float("nan"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            try:
                self.samples.append(rss_megabytes(self._pid))
            except (BenchError, ValueError):
                # The process has exited.
                return
            if self._stop.wait(self._interval):
                return
