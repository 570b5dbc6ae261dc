"""Benchmark 4: a gateway with 100,000 sessions.

The daemon is stopped, the store is filled to `sessions` active sessions
by inserting rows into its SQLite file, and the daemon is started again.
Its start reconciles the kernel set with the store in one transaction.
Then the daemon is left idle at the default accounting interval while its
CPU time is sampled, and the share of one core it used over whole
accounting cycles is reported. After that one accounting pass (the
enforcer's counter listing) is timed against `nft -j list set` of the same
set, and `capport clients` is timed.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from capport.bench.causes import describe_cpu_profile
from capport.bench.devices import fake_device
from capport.bench.figures import Figure, Profile, Result, at_most, median, ratio, under
from capport.bench.idlecpu import IdleShare, measure_idle_share
from capport.bench.parsing import log_seconds_between
from capport.bench.process import cpu_seconds, peak_rss_megabytes, rss_megabytes
from capport.bench.profiling import INSTALL_HINT, py_spy, read_profile, wrap_command
from capport.bench.settings import Settings
from capport.bench.testbed import BenchError, Testbed, run_checked
from capport.config import SessionSection
from capport.pacing import CPU_FACTOR
from capport.portal.views import GRANT_METHOD

NAME = "scale"
TITLE = "4. Scale: a gateway with many sessions"

WORKER = "capport.bench.nftworker"
SESSION_SECONDS = 3600.0
RECONCILE_FIRST = "Store opened at"
RECONCILE_LAST = "Reconciled the firewall with the store"
# The interval of Gateway.run_accounting when the configuration sets none.
DEFAULT_ACCOUNTING_SECONDS = float(
    SessionSection.model_fields["accounting_interval"].default
)
# The idle measurement starts this long after the daemon serves its portal,
# so the tail of its start is not taken for an accounting pass. The first
# pass comes a whole default interval after the start.
SETTLE_SECONDS = 10.0
# The maximum wait for the cycles after the first pass, to keep the run short.
# Two cycles of a 4 s pass (a 100 s rest each) fit.
IDLE_WINDOW_LIMIT = 240.0
# The start of the daemon's log message when it stretches the interval.
STRETCH_MESSAGE = "An accounting pass used"


def seed_sessions(path: Path, total: int, now: float) -> int:
    """Insert active sessions of fake devices until the store has total of them.

    Returns how many rows were inserted. The rows look like click-through
    sessions that started at now and last SESSION_SECONDS.
    """
    db = sqlite3.connect(path, timeout=30)
    try:
        active = db.execute("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
        missing = max(0, total - int(active.fetchone()[0]))
        rows = []
        for index in range(missing):
            device = fake_device(index)
            rows.append(
                (device.mac, str(device.ip), GRANT_METHOD, now, now + SESSION_SECONDS)
            )
        with db:
            db.executemany(
                "INSERT INTO sessions (mac, ip, method, started_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
    finally:
        db.close()
    return missing


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    lab = testbed.lab
    baseline_rss = rss_megabytes(testbed.gateway_pid)
    step("stopping the gateway")
    lab.stop_gateway()
    step(f"seeding the store with {settings.sessions:,} sessions")
    started = time.monotonic()
    inserted = seed_sessions(lab.store_path, settings.sessions, time.time())
    seed_seconds = time.monotonic() - started

    result.commands.append(shlex.join(lab.exec_argv("gw", lab.gateway_argv)))
    step("starting the gateway on the full store")
    offset = testbed.log_size()
    started = time.monotonic()
    testbed.lab.start_gateway(timeout=120.0)
    ready_seconds = time.monotonic() - started
    testbed.pin_gateway()
    reconcile = log_seconds_between(
        testbed.log_since(offset), RECONCILE_FIRST, RECONCILE_LAST
    )
    started_rss = rss_megabytes(testbed.gateway_pid)
    start_peak_rss = peak_rss_megabytes(testbed.gateway_pid)

    step(f"sampling the idle daemon's CPU over {settings.idle_passes} pass(es)")
    idle = _measure_idle(testbed, settings)
    stretch = _stretch_line(testbed.log_since(offset))

    step("timing accounting passes against nft")
    config = str(lab.config_path)
    accounting = testbed.worker(
        "gw",
        WORKER,
        ["account", config, str(settings.accounting_rounds)],
        timeout=300,
        record=result.commands,
    )
    step("timing capport clients")
    listings = {
        "table": _time_clients(testbed, config, [], result.commands),
        "JSON": _time_clients(testbed, config, ["--json"], result.commands),
    }
    pid = testbed.gateway_pid
    final_rss, peak_rss = rss_megabytes(pid), peak_rss_megabytes(pid)

    _judge(result, settings, reconcile, accounting, peak_rss)
    result.figures.append(_idle_figure(settings, idle, accounting))
    if stretch:
        result.notes.append(f"The daemon logged: {stretch}")
    result.figures += [
        Figure(
            name=f"`capport clients`, {kind}, {settings.sessions:,} sessions",
            value=seconds,
            unit="s",
            measured="the whole command, Python start-up included, output to a pipe",
        )
        for kind, seconds in listings.items()
    ]
    result.notes.append(
        f"The store was filled with {inserted:,} rows in {seed_seconds:.2f} s. The "
        f"restarted daemon served its portal {ready_seconds:.2f} s after it was "
        f"started. Its resident memory was {baseline_rss:.0f} MB before the store "
        f"was filled, {started_rss:.0f} MB after the start (at most "
        f"{start_peak_rss:.0f} MB during it), {final_rss:.0f} MB after the "
        f"listings, and at most {peak_rss:.0f} MB over the whole run (VmHWM)."
    )
    _describe(result, settings, accounting)
    _profile_misses(testbed, settings, result, step)
    return result


def _time_clients(
    testbed: Testbed, config: str, options: list[str], record: list[str]
) -> float:
    argv = testbed.argv(
        "gw", [sys.executable, "-m", "capport", "clients", "--config", config, *options]
    )
    record.append(shlex.join(argv))
    started = time.monotonic()
    completed = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        raise BenchError(
            f"`{shlex.join(argv)}` failed with status {completed.returncode}: "
            f"{completed.stderr.decode(errors='replace')[-500:]}"
        )
    if options == ["--json"]:
        rows = json.loads(completed.stdout)
        if not isinstance(rows, list):
            raise BenchError(f"`{shlex.join(argv)}` did not print a JSON list")
    return seconds


def _judge(
    result: Result,
    settings: Settings,
    reconcile: float,
    accounting: dict[str, Any],
    peak_rss: float,
) -> None:
    passes = accounting["passes"]
    enforcer = median([p["enforcer_seconds"] for p in passes])
    nft = median([p["nft_seconds"] for p in passes])
    cpu = median([p["enforcer_cpu_seconds"] for p in passes])
    devices = passes[0]["enforcer_devices"]
    elements = passes[0]["nft_elements"]
    result.figures += [
        Figure(
            name=f"{settings.sessions:,} sessions: reconcile after restart",
            value=reconcile,
            unit="s",
            measured=(
                "daemon log, from the store opened to the firewall reconciled "
                "(one transaction with every session)"
            ),
            target=under(3.0, "s"),
        ),
        Figure(
            name=f"{settings.sessions:,} sessions: one accounting pass",
            value=ratio(enforcer, nft),
            unit="x",
            measured=(
                f"enforcer usage() {enforcer:.2f} s ({cpu:.2f} s of CPU) for "
                f"{devices:,} devices, `nft -j list set` {nft:.2f} s for "
                f"{elements:,} elements; medians of {len(passes)} pass(es)"
            ),
            reference="`nft -j list set` of the same set, same run",
            target=at_most(1.0, "x"),
        ),
        Figure(
            name=f"{settings.sessions:,} sessions: resident memory of the daemon",
            value=peak_rss,
            unit="MB",
            measured="largest resident set (VmHWM) after the start and the listings",
            target=under(300.0, "MB"),
        ),
    ]


def _measure_idle(testbed: Testbed, settings: Settings) -> IdleShare:
    pid = testbed.gateway_pid
    time.sleep(SETTLE_SECONDS)
    return measure_idle_share(
        lambda: cpu_seconds(pid),
        # The first pass starts one default interval after the start and
        # takes a few seconds of its own at 100,000 sessions.
        first_pass_timeout=DEFAULT_ACCOUNTING_SECONDS + 30.0,
        window_for=lambda pass_cpu: _idle_window(pass_cpu, settings.idle_passes),
        passes=settings.idle_passes,
    )


def _idle_window(pass_cpu: float, passes: int) -> float:
    """Return how long to wait for passes cycles after a pass of pass_cpu s.

    The daemon rests the longer of the interval and CPU_FACTOR times the
    last pass's CPU time. A tenth more and 5 s cover passes that vary.
    """
    cycle = max(DEFAULT_ACCOUNTING_SECONDS, CPU_FACTOR * pass_cpu) + pass_cpu
    return min(IDLE_WINDOW_LIMIT, passes * cycle * 1.1 + 5.0)


def _stretch_line(log: str) -> str | None:
    """Return the daemon's message about a stretched accounting interval."""
    for line in log.splitlines():
        _, marker, rest = line.partition(STRETCH_MESSAGE)
        if marker:
            return marker + rest
    return None


def _idle_figure(
    settings: Settings, idle: IdleShare, accounting: dict[str, Any]
) -> Figure:
    passes = accounting["passes"]
    usage_cpu = median([p["enforcer_cpu_seconds"] for p in passes])
    per_pass = ", ".join(f"{cpu:.2f}" for cpu in idle.pass_cpu_seconds) or "none"
    if idle.aligned:
        window = (
            f"from the end of one accounting pass to the end of pass "
            f"{idle.passes} after it"
        )
    else:
        window = "with no two pass ends seen, so not aligned to passes"
    return Figure(
        name=(
            f"{settings.sessions:,} sessions: accounting CPU, share of one core, "
            "idle at the default interval"
        ),
        value=100 * idle.share,
        unit="%",
        measured=(
            f"the idle daemon's CPU time (utime + stime in /proc) "
            f"{idle.cpu_seconds:.2f} s over {idle.window_seconds:.0f} s, {window}; "
            f"CPU per pass {per_pass} s; enforcer usage() alone {usage_cpu:.2f} s "
            f"of CPU for {passes[0]['enforcer_devices']:,} devices in the worker"
        ),
        target=under(5.0, "%"),
    )


def _describe(result: Result, settings: Settings, accounting: dict[str, Any]) -> None:
    result.method += [
        f"The daemon is stopped with SIGTERM, the store file gets active "
        f"sessions of fake devices until it holds {settings.sessions:,}, and the "
        "daemon is started again with `capport run` in the gateway's namespace.",
        "Reconcile time comes from the daemon's own log (millisecond "
        "timestamps): from `Store opened` to `Reconciled the firewall`. It "
        "includes reading the sessions, building and applying one "
        "transaction, and indexing them in memory.",
        "The accounting pass is `NftablesEnforcer.usage()`, everything the "
        "daemon's periodic pass reads from the kernel. It dumps both "
        "authorised sets, both download sets and the quota objects over "
        "nfnetlink and keeps the counters by kernel key. The gateway builds "
        "each device's usage as it looks the device up, which the CPU share "
        "below includes. It runs in a "
        "separate process in the gateway's namespace with its socket "
        "already open. Its reference is "
        f"`{accounting['nft_command']}` (process start included) in the same "
        "process, right after it.",
        "The accounting CPU share is measured on the daemon itself, left "
        f"idle at the default {DEFAULT_ACCOUNTING_SECONDS:.0f} s interval "
        f"from {SETTLE_SECONDS:.0f} s after its start: its CPU time is read "
        "from /proc four times a second, each burst of CPU use is one "
        "accounting pass (bursts under a quarter of the largest are other "
        "periodic work), and the share is the CPU time between the end of "
        "one pass and the end of a later one divided by the time between "
        "them. The daemon rests after each pass for the longer of the "
        f"interval and {CPU_FACTOR:g} times the pass's CPU time, so the wait "
        f"is sized from the first pass seen, at most {IDLE_WINDOW_LIMIT:.0f} s.",
        "`capport clients` runs in the gateway's namespace and asks the "
        "daemon over its control socket.",
    ]


def _profile_misses(
    testbed: Testbed, settings: Settings, result: Result, step: Callable[[str], None]
) -> None:
    missed = {figure.name for figure in result.missed}
    if not missed:
        return
    executable = py_spy()
    config = str(testbed.lab.config_path)
    reconcile_missed = any("reconcile" in name for name in missed)
    memory_missed = any("memory" in name for name in missed)
    if any("accounting" in name for name in missed):
        if executable is None:
            result.notes.append(INSTALL_HINT)
        else:
            step("profiling an accounting pass")
            result.profiles.append(
                _profile_worker(
                    testbed, executable, ["counters", config, "3"], "accounting passes"
                )
            )
    if not (reconcile_missed or memory_missed):
        return
    step("stopping the gateway to profile its start")
    testbed.lab.stop_gateway()
    try:
        if reconcile_missed and executable is not None:
            step("profiling a reconcile")
            result.profiles.append(
                _profile_worker(testbed, executable, ["reconcile", config], "reconcile")
            )
        elif reconcile_missed:
            result.notes.append(INSTALL_HINT)
        if memory_missed:
            step("tracing the memory of a reconcile")
            traced = testbed.worker(
                "gw", WORKER, ["reconcile", config, "--tracemalloc"], timeout=300
            )
            plain = testbed.worker("gw", WORKER, ["reconcile", config], timeout=300)
            result.notes.append(_memory_table(traced, plain))
    finally:
        testbed.lab.start_gateway(timeout=120.0)
        testbed.pin_gateway()


def _profile_worker(
    testbed: Testbed, executable: str, arguments: list[str], title: str
) -> Profile:
    output = testbed.lab.state_dir / f"profile-{arguments[0]}.txt"
    argv = testbed.argv(
        "gw", wrap_command(executable, output, testbed.python_argv(WORKER, arguments))
    )
    run_checked(argv, timeout=600)
    profile = read_profile(output, f"{title} (`{WORKER}`)", shlex.join(argv), "")
    return replace(profile, cause=describe_cpu_profile(profile, None, "the worker"))


def _memory_table(traced: dict[str, Any], plain: dict[str, Any]) -> str:
    memory = traced["memory"]
    lines = [
        f"A process that reconciled {plain['sessions']:,} sessions as the daemon "
        f"does had {plain['rss_megabytes']:.0f} MB resident after the start and "
        f"{plain['rss_after_trim_megabytes']:.0f} MB after glibc's malloc_trim(0) "
        "returned the freed heap memory it could to the kernel.",
        "",
        f"tracemalloc in a process that reconciled {traced['sessions']:,} sessions "
        "as the daemon does (`python -m capport.bench.nftworker reconcile "
        f"--tracemalloc`): {memory['current_bytes'] / 1e6:.0f} MB allocated by "
        f"Python after the start, {memory['peak_bytes'] / 1e6:.0f} MB at the peak. "
        "Largest allocation sites:",
        "",
        "| site | MB | blocks |",
        "| --- | --- | --- |",
    ]
    for site in memory["sites"]:
        lines.append(
            f"| `{site['site']}` | {site['bytes'] / 1e6:.1f} | {site['count']:,} |"
        )
    return "\n".join(lines)
