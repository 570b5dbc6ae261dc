"""Kernel time per forwarded packet in netfilter, sampled with perf.

Throughput on a shared machine varies more between runs than the cost of
a few rules. The CPU time netfilter spends per packet varies much less: on
a shared 2-core VM, runs of one setup were within about 20 % of each
other while throughput varied by half. `perf record -a` samples every CPU
while one iperf3 run crosses the gateway. The share of samples under
nf_hook_slow (all netfilter hooks, connection tracking included) and under
nft_do_chain (nftables rules alone), times the sampled time, divided by
the packets the gateway forwarded, is the time per packet.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from capport.bench.parsing import IperfResult, parse_iperf3
from capport.bench.testbed import BenchError, Testbed, run_checked

HOOKS = "nf_hook_slow"
RULES = "nft_do_chain"
# About 10,000 samples per second and CPU. At 300 ns per packet and 15,000
# packets a second, a 3 s run gives nftables about 130 samples.
SAMPLE_HERTZ = 9999

_EVENT_COUNT = re.compile(r"^# Event count \(approx\.\): (\d+)\s*$", re.MULTILINE)
# A row of `perf report --children`: children %, self %, [k] symbol.
_ROW = re.compile(r"^\s+([\d.]+)%\s+([\d.]+)%\s+\[k\]\s+(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class PacketCost:
    """Nanoseconds of CPU time per forwarded packet, and the packet count."""

    hooks_ns: float
    rules_ns: float
    packets: int


def perf_executable() -> str | None:
    return shutil.which("perf")


def parse_children_report(
    text: str, symbols: Sequence[str]
) -> tuple[int, dict[str, float]]:
    """Read the sampled nanoseconds and each symbol's share with its callees.

    text is the output of `perf report --stdio --children --sort sym -g
    none` for a cpu-clock recording, whose event count is in nanoseconds.
    A symbol without samples has share 0. Raises ValueError when the
    report has no event count.
    """
    found = _EVENT_COUNT.search(text)
    if found is None:
        raise ValueError(f"perf report printed no event count: {text[:300]!r}")
    shares = dict.fromkeys(symbols, 0.0)
    for line in text.splitlines():
        row = _ROW.match(line)
        if row and row.group(3) in shares:
            shares[row.group(3)] = float(row.group(1)) / 100
    return int(found.group(1)), shares


def parse_forwarded(snmp: str) -> int:
    """Read ForwDatagrams, the IPv4 packets forwarded, from /proc/net/snmp."""
    rows = [line.split() for line in snmp.splitlines() if line.startswith("Ip:")]
    if len(rows) != 2 or "ForwDatagrams" not in rows[0]:
        raise ValueError(f"/proc/net/snmp has no Ip: ForwDatagrams: {snmp[:300]!r}")
    return int(rows[1][rows[0].index("ForwDatagrams")])


def cost_per_packet(
    sampled_ns: int, shares: dict[str, float], packets: int
) -> PacketCost:
    if packets <= 0:
        raise ValueError(f"the gateway forwarded {packets} packets during the profile")
    return PacketCost(
        hooks_ns=shares[HOOKS] * sampled_ns / packets,
        rules_ns=shares[RULES] * sampled_ns / packets,
        packets=packets,
    )


def record_argv(perf: str, output: Path, command: Sequence[str]) -> list[str]:
    return [
        perf,
        "record",
        "--all-cpus",
        "--call-graph",
        "fp",
        "--event",
        "cpu-clock",
        "--freq",
        str(SAMPLE_HERTZ),
        "--output",
        str(output),
        "--quiet",
        "--",
        *command,
    ]


def measure(
    testbed: Testbed, perf: str, iperf: Sequence[str], output: Path, timeout: float
) -> tuple[PacketCost, IperfResult]:
    """Run the iperf3 command iperf under perf and return the cost per packet."""
    before = _forwarded(testbed)
    printed = run_checked(record_argv(perf, output, iperf), timeout=timeout)
    packets = _forwarded(testbed) - before
    report = run_checked(
        [perf, "report", "--input", str(output), "--stdio", "--children"]
        + ["--sort", "sym", "-g", "none"],
        timeout=120,
    )
    output.unlink(missing_ok=True)
    try:
        sampled_ns, shares = parse_children_report(report, (HOOKS, RULES))
        return cost_per_packet(sampled_ns, shares, packets), parse_iperf3(printed)
    except ValueError as error:
        raise BenchError(f"reading the netfilter profile failed: {error}") from None


def _forwarded(testbed: Testbed) -> int:
    try:
        return parse_forwarded(testbed.run("gw", ["cat", "/proc/net/snmp"]))
    except ValueError as error:
        raise BenchError(str(error)) from None
