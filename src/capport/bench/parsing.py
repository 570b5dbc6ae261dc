"""Reading what the load tools and the kernel print. No I/O.

Each parser takes text and returns values, and raises ValueError with the
offending text when the output does not have the expected form, so a tool
that failed is never read as a result of zero.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from capport.bench.figures import ProfileEntry

# wrk 4.1 prints latencies with a unit suffix (us, ms, s, m, h).
_LATENCY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_WRK_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_WRK_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$")
_WRK_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)

# The daemon's log format: "2026-01-31 12:00:00,123 INFO capport.store: ...".
_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+): (.*)$", re.MULTILINE
)

# The first frame of each stack when py-spy runs with --threads.
_THREAD_FRAME = "thread ("

# A frame in py-spy's raw (collapsed) output: "function (file:line)".
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


@dataclass(frozen=True, slots=True)
class WrkResult:
    """The summary of one wrk run."""

    requests: int
    seconds: float
    requests_per_second: float
    latency_seconds: dict[float, float]
    non_2xx: int
    socket_errors: dict[str, int]

    @property
    def p99_seconds(self) -> float:
        return self.latency_seconds[99.0]

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values())


def parse_wrk(text: str) -> WrkResult:
    """Read the output of `wrk --latency`.

    Raises ValueError when the rate, the request count or the latency
    distribution is missing, as happens when wrk could not connect.
    """
    rate = _WRK_RATE.search(text)
    total = _WRK_TOTAL.search(text)
    if rate is None or total is None:
        raise ValueError(f"no request rate in wrk output: {text.strip()[:300]!r}")
    latencies: dict[float, float] = {}
    for line in text.splitlines():
        match = _WRK_PERCENTILE.match(line)
        if match:
            value, unit = float(match.group(2)), match.group(3)
            latencies[float(match.group(1))] = value * _LATENCY_UNITS[unit]
    if 99.0 not in latencies:
        raise ValueError(
            "no latency distribution in wrk output; run wrk with --latency: "
            f"{text.strip()[:300]!r}"
        )
    non_2xx = _WRK_NON_2XX.search(text)
    errors = _WRK_SOCKET_ERRORS.search(text)
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if errors is not None:
        counts = [int(group) for group in errors.groups()]
        socket_errors = dict(zip(socket_errors, counts, strict=True))
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _LATENCY_UNITS[total.group(3)],
        requests_per_second=float(rate.group(1)),
        latency_seconds=latencies,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


@dataclass(frozen=True, slots=True)
class IperfResult:
    """The receiver's view of one iperf3 TCP run."""

    bits_per_second: float
    seconds: float
    retransmits: int

    @property
    def gigabits_per_second(self) -> float:
        return self.bits_per_second / 1e9


def parse_iperf3(text: str) -> IperfResult:
    """Read the JSON output of `iperf3 --json` for a TCP test.

    The receiver's rate is used, because it counts only what arrived.
    Raises ValueError for an error report or a missing summary.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"iperf3 output is not JSON: {text.strip()[:300]!r}"
        ) from error
    if "error" in data:
        raise ValueError(f"iperf3 failed: {data['error']}")
    try:
        received = data["end"]["sum_received"]
        sent = data["end"]["sum_sent"]
        return IperfResult(
            bits_per_second=float(received["bits_per_second"]),
            seconds=float(received["seconds"]),
            retransmits=int(sent.get("retransmits", 0)),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"iperf3 output has no TCP summary: missing {error}") from None


def parse_status_kilobytes(text: str, field: str) -> int:
    """Return a "kB" field (VmRSS, VmHWM) of /proc/PID/status in kilobytes."""
    match = re.search(rf"^{re.escape(field)}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {field} line in /proc/PID/status")
    return int(match.group(1))


def parse_cpu_ticks(stat: str) -> int:
    """Return utime + stime of /proc/PID/stat, in clock ticks.

    Fields are counted after the last ")", because the command name (field
    2) may itself contain spaces and parentheses; utime and stime are fields
    14 and 15 (proc(5)).
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def parse_cpu_times(stat: str) -> dict[int, tuple[int, int]]:
    """Return (busy, total) clock ticks of every CPU in /proc/stat.

    Idle and iowait count as not busy; everything else (user, nice,
    system, irq, softirq, steal) as busy.
    """
    times: dict[int, tuple[int, int]] = {}
    for line in stat.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(value) for value in values[:8]]
        idle = ticks[3] + ticks[4]
        times[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return times


@dataclass(frozen=True)
class CpuKinds:
    """Clock ticks one CPU spent in user space, in the kernel for processes,
    and in interrupts (irq and softirq, where most network receive work runs).
    """

    user: int
    system: int
    interrupts: int

    def minus(self, earlier: CpuKinds) -> CpuKinds:
        return CpuKinds(
            self.user - earlier.user,
            self.system - earlier.system,
            self.interrupts - earlier.interrupts,
        )


def parse_cpu_kinds(stat: str) -> dict[int, CpuKinds]:
    """Return the user, system and interrupt ticks of every CPU in /proc/stat."""
    kinds: dict[int, CpuKinds] = {}
    for line in stat.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        user, nice, system, _, _, irq, softirq = (int(v) for v in values[:7])
        kinds[int(name[3:])] = CpuKinds(user + nice, system, irq + softirq)
    return kinds


def busy_shares(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, float]:
    """Return each CPU's busy share between two parse_cpu_times readings."""
    shares = {}
    for cpu, (busy, total) in after.items():
        old_busy, old_total = before.get(cpu, (0, 0))
        elapsed = total - old_total
        shares[cpu] = (busy - old_busy) / elapsed if elapsed > 0 else math.nan
    return shares


def log_seconds_between(text: str, first: str, last: str) -> float:
    """Return the seconds from the last log line containing first to the next
    line after it containing last.

    Raises ValueError when either line is missing, which happens when the
    daemon did not start or changed its messages.
    """
    lines = [(match.group(1), match.group(4)) for match in _LOG_LINE.finditer(text)]
    starts = [i for i, (_, message) in enumerate(lines) if first in message]
    if not starts:
        raise ValueError(f"no log line containing {first!r}")
    start = starts[-1]
    for stamp, message in lines[start + 1 :]:
        if last in message:
            return (_log_time(stamp) - _log_time(lines[start][0])).total_seconds()
    raise ValueError(f"no log line containing {last!r} after {first!r}")


def _log_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


def top_profile_entries(
    collapsed: str, limit: int = 12
) -> tuple[int, list[ProfileEntry]]:
    """Rank the functions of py-spy's raw output by their own samples.

    Each line is "frame;frame;... count", outermost frame first. A
    function's own share counts the samples where it is the innermost frame.
    Its total share counts every sample it appears in, once per sample even
    when it recurses. Returns the number of samples and the top entries.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [
            _function_name(frame)
            for frame in stack.split(";")
            if frame and not frame.startswith(_THREAD_FRAME)
        ]
        if not frames:
            continue
        own[frames[-1]] += count
        for function in set(frames):
            total[function] += count
    if samples == 0:
        return 0, []
    entries = [
        ProfileEntry(function, count / samples, total[function] / samples)
        for function, count in own.most_common(limit)
    ]
    return samples, entries


def thread_shares(collapsed: str) -> list[tuple[str, float]]:
    """Return each thread's share of the samples, largest first.

    py-spy's --threads option puts a frame "thread (TID): NAME" first in
    every stack; stacks without one count as one unnamed thread.
    """
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not count_text.isdigit():
            continue
        first = stack.split(";", 1)[0]
        name = "(all threads)"
        if first.startswith(_THREAD_FRAME):
            name = first.partition("): ")[2] or first
        counts[name] += int(count_text)
    total = sum(counts.values())
    return [(name, count / total) for name, count in counts.most_common()]


def _function_name(frame: str) -> str:
    """Return "function (file)" for a frame, without the line number."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    function, path = match.groups()
    return f"{function} ({short_path(path)})"


def short_path(path: str) -> str:
    """Return path from its package directory on, as a reader looks it up."""
    # The prefix of the virtual environment or the checkout is left out.
    for marker in ("/site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3." else tail
    return path
