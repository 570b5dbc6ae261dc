"""Benchmark 1: 511 responses per second, capport's responder against nginx.

wrk runs in client c1, pinned to LOAD_CPU, against the origin's address on
port 80, so every connection passes the gateway's nftables redirect. The
servers run in the gateway's namespace pinned to SERVER_CPU: capport's
daemon, and nginx returning capport's own 511 body. nginx is reached
through an equivalent redirect rule (see nginx.REDIRECT_TABLE), so both
servers get the same request bytes over the same kind of path. Rounds
alternate between the servers, so drift in the machine's load affects both.
"""

from __future__ import annotations

import math
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from capport.bench.causes import describe_cpu_profile
from capport.bench.figures import (
    Figure,
    Result,
    at_least,
    median,
    paired_ratio,
    spread,
)
from capport.bench.nginx import REDIRECT_TABLE, Nginx, redirect_ruleset, render_config
from capport.bench.parsing import CpuKinds, WrkResult, busy_shares, parse_wrk
from capport.bench.process import cpu_kinds, cpu_seconds, cpu_times, ticks_to_seconds
from capport.bench.profiling import INSTALL_HINT, Recording, py_spy
from capport.bench.settings import Settings
from capport.bench.testbed import (
    LOAD_CPU,
    NGINX_PORT,
    SERVER_CPU,
    BenchError,
    Testbed,
    run_checked,
)
from capport.config import load_config
from capport.lab.topology import GATEWAY_LAN_ADDRESS, LAN_INTERFACE, UPSTREAM_ADDRESS

NAME = "responder"
TITLE = "1. Responder throughput against nginx"

URL = f"http://{UPSTREAM_ADDRESS}/"
SERVERS = ("capport", "nginx")
WARM_UP_SECONDS = 2
# wrk has one core, so one thread. The connections stay below the
# responder's default max_connections_per_client (64): wrk runs from one
# client address, and connections over that limit would get a 503 that wrk
# counts like any other non-2xx response.
WRK_THREADS = 1
WRK_CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    headers: tuple[str, ...]
    target: float


KEEP_ALIVE = Mode("keep-alive", (), 1.0)
NEW_CONNECTIONS = Mode("new connection each", ("-H", "Connection: close"), 0.8)
MODES = (KEEP_ALIVE, NEW_CONNECTIONS)


@dataclass(frozen=True, slots=True)
class Run:
    server: str
    mode: str
    result: WrkResult
    # Share of one core used by the server process, and how busy each CPU
    # of the machine was (softirq work of the network path included).
    server_cpu: float
    busy: dict[int, float]
    # Microseconds per request the server's CPU spent in user space, in the
    # kernel for processes and in interrupts.
    per_request: tuple[float, float, float]


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    _tune_client(testbed)
    step("fetching capport's 511")
    head, body = fetch_response(testbed)
    directory = testbed.lab.state_dir / "nginx"
    keepalive = load_config(testbed.lab.config_path).responder.keepalive_timeout
    config = render_config(
        directory, GATEWAY_LAN_ADDRESS, NGINX_PORT, body.decode("utf-8"), keepalive
    )
    nginx = Nginx(testbed, directory, config)
    nginx.start()
    try:
        nginx_head = _check_nginx(testbed, body)
        result.commands.append(shlex.join(nginx.argv))
        nft = shlex.join(testbed.argv("gw", ["nft", "-f", "-"]))
        rules = redirect_ruleset(LAN_INTERFACE, NGINX_PORT)
        result.commands.append(f"{nft} <<'EOF'  # before each nginx round\n{rules}EOF")
        pids = {"capport": testbed.gateway_pid, "nginx": nginx.pid}
        runs = []
        for mode in MODES:
            for server in SERVERS:
                step(f"{server}, {mode.name}, warm-up")
                _measure(testbed, WARM_UP_SECONDS, server, mode, pids[server], result)
            for number in range(1, settings.wrk_rounds + 1):
                # Each round swaps which server goes first, so neither always
                # inherits the other's closing connections.
                order = SERVERS if number % 2 else SERVERS[::-1]
                for server in order:
                    step(f"{server}, {mode.name}, round {number}")
                    seconds = settings.wrk_seconds
                    pid = pids[server]
                    runs.append(_measure(testbed, seconds, server, mode, pid, result))
        _judge(result, runs, settings)
        _describe(result, settings, head, nginx_head, len(body))
        _profile_misses(testbed, settings, result, step)
    finally:
        nginx.stop()
        _remove_redirect(testbed)
    return result


def _tune_client(testbed: Testbed) -> None:
    # With a new connection per request, wrk opens tens of thousands of
    # connections a round. It may close its socket before the server's FIN
    # arrives, which leaves the client's port in TIME_WAIT for 60 s, and
    # the default 28,232 ports then run out after a round or two. The
    # client namespace may reuse such ports (the timestamps tell the
    # connections apart) and gets every unprivileged port.
    sysctl = [
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.tcp_tw_reuse=1",
        "net.ipv4.ip_local_port_range=1024 65535",
    ]
    testbed.run("c1", sysctl)


def fetch_response(testbed: Testbed) -> tuple[bytes, bytes]:
    """Return the head and body of the 511 client c1 receives from the origin."""
    argv = testbed.argv("c1", ["curl", "-sS", "--include", "--max-time", "5", URL])
    completed = subprocess.run(argv, capture_output=True, timeout=15, check=False)
    if completed.returncode != 0:
        raise BenchError(f"`{shlex.join(argv)}` failed: {completed.stderr!r}")
    head, separator, body = completed.stdout.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"HTTP/1.1 511"):
        raise BenchError(f"expected a 511 from {URL}, got {completed.stdout[:200]!r}")
    return head + separator, body


def _check_nginx(testbed: Testbed, body: bytes) -> bytes:
    """Check that nginx, through its redirect, returns 511 and the same body."""
    _add_redirect(testbed)
    try:
        nginx_head, nginx_body = fetch_response(testbed)
    finally:
        _remove_redirect(testbed)
    if nginx_body != body:
        raise BenchError(
            f"nginx returned a body of {len(nginx_body)} bytes that differs from "
            f"capport's {len(body)} bytes; check {testbed.lab.state_dir}/nginx"
        )
    return nginx_head


def _add_redirect(testbed: Testbed) -> None:
    rules = redirect_ruleset(LAN_INTERFACE, NGINX_PORT)
    testbed.run("gw", ["nft", "-f", "-"], input=rules)


def _remove_redirect(testbed: Testbed) -> None:
    # Adding the table first makes the delete succeed whether or not it exists.
    rules = f"table inet {REDIRECT_TABLE}\ndelete table inet {REDIRECT_TABLE}\n"
    testbed.run("gw", ["nft", "-f", "-"], input=rules)


def wrk_argv(mode: Mode, seconds: int) -> list[str]:
    return [
        "wrk",
        f"--threads={WRK_THREADS}",
        f"--connections={WRK_CONNECTIONS}",
        f"--duration={seconds}s",
        "--latency",
        *mode.headers,
        URL,
    ]


def _measure(
    testbed: Testbed,
    seconds: int,
    server: str,
    mode: Mode,
    pid: int,
    result: Result,
) -> Run:
    if server == "nginx":
        _add_redirect(testbed)
    try:
        argv = testbed.argv("c1", wrk_argv(mode, seconds), LOAD_CPU)
        if shlex.join(argv) not in result.commands:
            result.commands.append(shlex.join(argv))
        log_offset = testbed.log_size()
        server_before, machine_before = cpu_seconds(pid), cpu_times()
        kinds_before = cpu_kinds()[SERVER_CPU]
        started = time.monotonic()
        output = run_checked(argv, timeout=seconds + 30)
        elapsed = time.monotonic() - started
        server_cpu = (cpu_seconds(pid) - server_before) / elapsed
        busy = busy_shares(machine_before, cpu_times())
        kinds = cpu_kinds()[SERVER_CPU].minus(kinds_before)
    finally:
        if server == "nginx":
            _remove_redirect(testbed)
    wrk = parse_wrk(output)
    if wrk.non_2xx != wrk.requests:
        raise BenchError(
            f"{server} returned 2xx or 3xx to {wrk.requests - wrk.non_2xx} of "
            f"{wrk.requests} requests instead of 511; the client is not captive"
        )
    if server == "capport" and "Rejected a connection" in testbed.log_since(log_offset):
        raise BenchError(
            "the responder rejected connections at its connection limits during "
            "the run; lower WRK_CONNECTIONS in capport/bench/responder.py below "
            "max_connections_per_client"
        )
    # Let the kernel finish closing the round's connections before the next.
    time.sleep(1.0)
    return Run(server, mode.name, wrk, server_cpu, busy, _per_request(kinds, wrk))


def _per_request(kinds: CpuKinds, wrk: WrkResult) -> tuple[float, float, float]:
    if not wrk.requests:
        return (math.nan, math.nan, math.nan)
    user, system, interrupts = (
        ticks_to_seconds(ticks) / wrk.requests * 1e6
        for ticks in (kinds.user, kinds.system, kinds.interrupts)
    )
    return user, system, interrupts


def _judge(result: Result, runs: list[Run], settings: Settings) -> None:
    for mode in MODES:
        rates: dict[str, list[float]] = {}
        p99: dict[str, float] = {}
        for server in SERVERS:
            mine = [
                r.result for r in runs if r.server == server and r.mode == mode.name
            ]
            rates[server] = [wrk.requests_per_second for wrk in mine]
            p99[server] = median([wrk.p99_seconds * 1000 for wrk in mine])
        capport, nginx = median(rates["capport"]), median(rates["nginx"])
        measured = (
            f"capport {capport:,.0f} req/s (p99 {p99['capport']:.2f} ms), "
            f"nginx {nginx:,.0f} req/s (p99 {p99['nginx']:.2f} ms), medians of "
            f"{settings.wrk_rounds} round(s); the rates varied between rounds by "
            f"{spread(rates['capport']):.0%} (capport) and "
            f"{spread(rates['nginx']):.0%} (nginx) of their medians"
        )
        result.figures.append(
            Figure(
                name=f"511 responses per second, {mode.name}",
                value=paired_ratio(rates["capport"], rates["nginx"]),
                unit="x",
                measured=measured,
                reference="nginx `return 511`, same body, 1 worker",
                target=at_least(mode.target, "x"),
            )
        )
    result.notes.append(_runs_table(runs))
    result.notes.append(_cost_table(runs))


def _runs_table(runs: list[Run]) -> str:
    lines = [
        "| server | mode | req/s | p50 | p99 | socket errors | server process "
        f"| CPU {LOAD_CPU} busy | CPU {SERVER_CPU} busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run_ in runs:
        wrk = run_.result
        lines.append(
            f"| {run_.server} | {run_.mode} | {wrk.requests_per_second:,.0f} "
            f"| {wrk.latency_seconds[50.0] * 1000:.2f} ms "
            f"| {wrk.p99_seconds * 1000:.2f} ms | {wrk.errors} "
            f"| {run_.server_cpu:.0%} | {run_.busy.get(LOAD_CPU, math.nan):.0%} "
            f"| {run_.busy.get(SERVER_CPU, math.nan):.0%} |"
        )
    return "\n".join(lines)


def _cost_table(runs: list[Run]) -> str:
    """Tabulate the server CPU's time per request, by kind, medians over rounds."""
    lines = [
        f"CPU {SERVER_CPU}'s time per request, in microseconds (medians over "
        "rounds): user space, the kernel working for processes (system "
        "calls), and interrupts (where most of the network receive path "
        "runs). Both servers share the machine's network path, so a "
        "difference in the kernel columns comes from how each uses sockets.",
        "",
        "| server | mode | user | system | interrupts | total |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        for server in SERVERS:
            mine = [
                r.per_request for r in runs if (r.server, r.mode) == (server, mode.name)
            ]
            if not mine:
                continue
            columns = zip(*mine, strict=True)
            user, system, interrupts = (median(column) for column in columns)
            lines.append(
                f"| {server} | {mode.name} | {user:.2f} | {system:.2f} "
                f"| {interrupts:.2f} | {user + system + interrupts:.2f} |"
            )
    return "\n".join(lines)


def _describe(
    result: Result, settings: Settings, head: bytes, nginx_head: bytes, body_bytes: int
) -> None:
    result.method += [
        f"wrk in client c1 on CPU {LOAD_CPU}, {WRK_THREADS} thread(s) "
        f"and {WRK_CONNECTIONS} connections, {settings.wrk_seconds} s per "
        f"round, {settings.wrk_rounds} round(s) per server and mode, alternating "
        "capport and nginx, after one discarded warm-up round of each. The "
        "figure is the median over rounds of capport's rate divided by "
        "nginx's rate in the same round, so load from other programs on the "
        "machine that changes between rounds cancels out.",
        f"Both servers are pinned to CPU {SERVER_CPU} (`taskset`): every thread of "
        "capport's daemon, and nginx's master and its one worker.",
        f"wrk requests {URL} (the origin) for both servers. For capport the "
        "request takes capport's own redirect to the responder. For nginx, a "
        f"table `inet {REDIRECT_TABLE}` with the same rule (interface, port 80, "
        "`fib daddr type != local`, a negated lookup in an empty set of the "
        "same type) and priority -101 redirects it to nginx on port "
        f"{NGINX_PORT}; capport's chain is then not evaluated, so each request "
        "passes one equivalent rule. The table exists only during nginx rounds.",
        f"Both send the same {body_bytes}-byte body with the same Content-Type and "
        f"Cache-Control; the heads differ: capport {len(head)} bytes, nginx "
        f"{len(nginx_head)} bytes (nginx adds `Server: nginx` and omits the "
        "reason phrase).",
        "nginx runs with `keepalive_requests` raised from its default of 1,000, "
        "because capport's responder has no such cap, and with capport's "
        "keep-alive timeout; access logging is off (capport's responder has none).",
        "Client c1 may reuse its ports in TIME_WAIT (`net.ipv4.tcp_tw_reuse=1`) "
        "and use ports 1024-65535, or new-connection rounds would run out of "
        "ports; the gateway's namespace is unchanged.",
        "p50 and p99 are wrk's latency distribution. Server process: its CPU "
        "time (with nginx's worker) over the round's duration, as a share of "
        "one core. CPU busy: the share of time each CPU was not idle "
        "(/proc/stat), which includes the kernel's network processing and any "
        "other program running on the machine.",
    ]


def _profile_misses(
    testbed: Testbed, settings: Settings, result: Result, step: Callable[[str], None]
) -> None:
    missed = [
        mode
        for mode, figure in zip(MODES, result.figures, strict=True)
        if figure.met is False
    ]
    if not missed:
        return
    executable = py_spy()
    if executable is None:
        result.notes.append(INSTALL_HINT)
        return
    for mode in missed:
        step(f"profiling capport, {mode.name}")
        seconds = settings.profile_seconds
        output = testbed.lab.state_dir / f"profile-responder-{len(result.profiles)}.txt"
        recording = Recording(executable, testbed.gateway_pid, seconds, output)
        # wrk runs a little longer than py-spy samples, so every sample is
        # taken under load.
        argv = testbed.argv("c1", wrk_argv(mode, seconds + 2), LOAD_CPU)
        pid = testbed.gateway_pid
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        recording.start()
        run_checked(argv, timeout=seconds + 30)
        cpu_share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
        profile = recording.finish(f"capport's daemon under wrk, {mode.name}")
        cause = describe_cpu_profile(profile, cpu_share, "the daemon")
        result.profiles.append(replace(profile, cause=cause))
