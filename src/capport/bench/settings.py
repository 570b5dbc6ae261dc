"""Durations and sizes of a benchmark run, full and quick."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    """Durations and sizes for each benchmark. The defaults are the full run.

    The full run took 5 to 10 minutes on a 2-core machine shared with other
    work before the scale benchmark sampled the idle daemon, which adds up
    to 4 minutes. NOTE: the 15 minutes the command is allowed leave little
    room, so the total is an estimate until a full run confirms it.
    """

    quick: bool = False
    # Responder: wrk rounds per server and connection mode.
    wrk_seconds: int = 5
    wrk_rounds: int = 5
    # Data plane.
    # Single-stream TCP over veth varies by tens of percent between runs on
    # a shared machine, so the ratio is a median of several short rounds.
    # Each round runs iperf3 four times, for iperf_seconds plus one second
    # left out, so the rounds of a full run take about a minute.
    iperf_seconds: int = 2
    iperf_rounds: int = 5
    other_devices: int = 10_000
    # Logins. Their sum, plus abuse_devices, stays well under 1,024. The
    # gateway needs a neighbour entry for each device. Linux keeps one IPv4
    # neighbour table for all namespaces, and it refuses new entries beyond
    # gc_thresh3 (1,024 by default, settable only in the host's namespace)
    # while none can be evicted. An entry confirmed by traffic stays
    # REACHABLE for 15 to 45 s, and a REACHABLE entry cannot be evicted.
    latency_logins: int = 100
    rate_logins: int = 400
    profile_logins: int = 300
    login_concurrency: int = 32
    # Scale.
    sessions: int = 100_000
    accounting_rounds: int = 3
    # Accounting cycles the idle daemon is sampled over, after a first pass.
    idle_passes: int = 2
    # Abuse.
    abuse_connections: int = 2_000
    abuse_devices: int = 40
    # Profiles taken when a target is missed.
    profile_seconds: int = 6


FULL = Settings()

QUICK = Settings(
    quick=True,
    wrk_seconds=2,
    wrk_rounds=1,
    iperf_seconds=1,
    iperf_rounds=1,
    latency_logins=20,
    rate_logins=100,
    profile_logins=60,
    sessions=10_000,
    accounting_rounds=1,
    idle_passes=1,
    abuse_connections=400,
    abuse_devices=10,
    profile_seconds=2,
)
