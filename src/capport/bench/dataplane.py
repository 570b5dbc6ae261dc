"""Benchmark 2: throughput of an authorised device, with and without capport.

Client c2 logs in through the portal, and other_devices fake devices are
authorised with it through the enforcer in one transaction. iperf3 then
sends from c2 to the upstream host through the gateway. Each round measures
four setups of the gateway's nftables rules back to back: capport's table,
no rules at all (the reference), one accept rule, and connection tracking
alone. The last two show how much of the difference any table, and
connection tracking, cost before capport's own rules. When perf is
installed, one more run of connection tracking alone and one of capport's
table are profiled for netfilter's CPU time per forwarded packet.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

from capport.bench import forwarding, kernelcost
from capport.bench.figures import Figure, Result, at_least, spread
from capport.bench.forwarding import CAPPORT, CONNTRACK, NONE, Setup, SetupSummary
from capport.bench.kernelcost import PacketCost
from capport.bench.parsing import IperfResult, parse_iperf3
from capport.bench.settings import Settings
from capport.bench.testbed import LOAD_CPU, SERVER_CPU, BenchError, Testbed, run_checked
from capport.config import load_config
from capport.enforce.ruleset import ALLOWED4
from capport.lab.topology import (
    CLIENT_ADDRESSES,
    CLIENT_MACS,
    GATEWAY_LAN_ADDRESS,
    UPSTREAM_ADDRESS,
)

NAME = "dataplane"
TITLE = "2. Data plane: an authorised device through the gateway"

IPERF_PORT = 5201
CLIENT = "c2"
WORKER = "capport.bench.nftworker"


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    config = str(testbed.lab.config_path)
    table = load_config(testbed.lab.config_path).firewall.table
    step("logging client c2 in through the portal")
    log_in(testbed, CLIENT, result.commands)
    step(f"authorising {settings.other_devices:,} other devices")
    granted = testbed.worker(
        "gw",
        WORKER,
        ["grant", config, str(settings.other_devices)],
        record=result.commands,
    )
    all_setups = forwarding.setups(settings.other_devices)
    rates: dict[str, list[float]] = {setup.key: [] for setup in all_setups}
    runs: dict[str, list[IperfResult]] = {setup.key: [] for setup in all_setups}
    # The grant left capport's full table in place.
    current = CAPPORT
    server = _start_server(testbed, result)
    try:
        for number in range(1, settings.iperf_rounds + 1):
            for setup in forwarding.round_order(all_setups, number):
                if setup.key != current:
                    _switch(testbed, setup, table, settings.other_devices, result)
                    current = setup.key
                _check(testbed, setup, table, settings.other_devices)
                step(f"round {number} of {settings.iperf_rounds}: {setup.label}")
                measured = _iperf(testbed, settings, result)
                runs[setup.key].append(measured)
                rates[setup.key].append(measured.gigabits_per_second)
        labels = {setup.key: setup.label for setup in all_setups}
        _judge(result, settings, forwarding.summarise(rates, labels), runs, granted)
        _profile_netfilter(testbed, settings, all_setups, current, table, result, step)
    finally:
        server.terminate()
        server.wait(timeout=10)
        step("restarting the gateway to reconcile its table with the store")
        testbed.restart_gateway()
    return result


def _profile_netfilter(
    testbed: Testbed,
    settings: Settings,
    all_setups: tuple[Setup, ...],
    current: str,
    table: str,
    result: Result,
    step: Callable[[str], None],
) -> None:
    """Profile netfilter with connection tracking only, then with capport's table.

    current is the setup in place. The gateway is left with capport's full
    table, as the benchmark found it.
    """
    by_key = {setup.key: setup for setup in all_setups}
    perf = kernelcost.perf_executable()
    if perf is None:
        result.notes.append(
            "perf is not installed (Debian package linux-perf), so "
            "netfilter's time per forwarded packet was not measured."
        )
    profiled = (CONNTRACK, CAPPORT) if perf is not None else (CAPPORT,)
    costs: dict[str, PacketCost] = {}
    for key in profiled:
        if key != current:
            _switch(testbed, by_key[key], table, settings.other_devices, result)
            current = key
        _check(testbed, by_key[key], table, settings.other_devices)
        if perf is None:
            continue
        step(f"profiling netfilter: {by_key[key].label}")
        try:
            costs[key] = _profile(testbed, settings, perf, by_key[key], result)
        except BenchError as error:
            # The throughput figures stand without the profile.
            result.notes.append(f"The netfilter profile failed: {error}")
            perf = None
    labels = {setup.key: setup.label for setup in all_setups}
    _report_costs(result, costs, labels)


def _switch(
    testbed: Testbed, setup: Setup, table: str, others: int, result: Result
) -> None:
    """Leave the gateway with exactly the rules of setup.

    Every table a setup uses is deleted first in one batch. Capport's table
    is then installed through the enforcer, as the daemon installs it.
    """
    names = [table, forwarding.ACCEPT_TABLE_NAME, forwarding.CONNTRACK_TABLE_NAME]
    batch = forwarding.removal_batch(names)
    if setup.ruleset is not None:
        batch += setup.ruleset
    _record_nft(testbed, batch, result)
    testbed.run("gw", ["nft", "-f", "-"], input=batch)
    if setup.key == CAPPORT:
        _install(testbed, others, result)


def _record_nft(testbed: Testbed, batch: str, result: Result) -> None:
    nft = shlex.join(testbed.argv("gw", ["nft", "-f", "-"]))
    command = f"{nft} <<'EOF'\n{batch}EOF"
    if command not in result.commands:
        result.commands.append(command)


def _check(testbed: Testbed, setup: Setup, table: str, others: int) -> None:
    """Raise BenchError unless the gateway has exactly the rules of setup.

    The reference must have no table at all, and capport's table must hold
    client c2 and every other device, or the ratio compares the wrong things.
    """
    tables = forwarding.listed_tables(testbed.run("gw", ["nft", "list", "tables"]))
    expected = {
        NONE: [],
        forwarding.ACCEPT: [f"inet {forwarding.ACCEPT_TABLE_NAME}"],
        forwarding.CONNTRACK: [f"inet {forwarding.CONNTRACK_TABLE_NAME}"],
        CAPPORT: [f"inet {table}"],
    }[setup.key]
    if tables != expected:
        raise BenchError(
            f"the gateway has tables {tables} for the setup {setup.label!r}, "
            f"expected {expected}"
        )
    if setup.key == NONE:
        listing = testbed.run("gw", ["nft", "list", "ruleset"])
        if listing.strip():
            raise BenchError(
                f"the gateway has rules for the setup without rules: {listing[:500]}"
            )
    if setup.key == CAPPORT:
        argv = ["nft", "-j", "list", "set", "inet", table, ALLOWED4]
        keys = forwarding.set_element_keys(testbed.run("gw", argv))
        client = f"{CLIENT_MACS[CLIENT]}/{CLIENT_ADDRESSES[CLIENT]}"
        if len(keys) != others + 1 or client not in keys:
            raise BenchError(
                f"{table}'s set {ALLOWED4} contains {len(keys)} devices, "
                f"expected client c2 and {others} others"
            )


def _profile(
    testbed: Testbed, settings: Settings, perf: str, setup: Setup, result: Result
) -> PacketCost:
    """Measure netfilter's time per forwarded packet during one iperf3 run."""
    iperf = testbed.argv(CLIENT, iperf_argv(settings.iperf_seconds), LOAD_CPU)
    output = testbed.lab.state_dir / f"perf-{setup.key}.data"
    command = shlex.join(kernelcost.record_argv(perf, output, iperf))
    if command not in result.commands:
        result.commands.append(command)
    cost, _ = kernelcost.measure(
        testbed, perf, iperf, output, timeout=settings.iperf_seconds + 60
    )
    return cost


def _report_costs(
    result: Result, costs: dict[str, PacketCost], labels: dict[str, str]
) -> None:
    if CAPPORT not in costs or CONNTRACK not in costs:
        return
    capport, conntrack = costs[CAPPORT], costs[CONNTRACK]
    result.figures.append(
        Figure(
            name="nftables rules per forwarded packet, capport's table",
            value=capport.rules_ns,
            unit="ns",
            measured=(
                f"nft_do_chain with its callees: {capport.rules_ns:.0f} ns with "
                f"capport's table, {conntrack.rules_ns:.0f} ns with connection "
                f"tracking only; all netfilter hooks: {capport.hooks_ns:.0f} ns "
                f"and {conntrack.hooks_ns:.0f} ns"
            ),
            reference=labels[CONNTRACK],
        )
    )
    result.method.append(
        "After the rounds, `perf record --all-cpus` samples the machine "
        "(cpu-clock, "
        f"{kernelcost.SAMPLE_HERTZ} Hz) during one more iperf3 run with "
        "connection tracking only and one with capport's table. The time "
        "under nft_do_chain (nftables rules) and under nf_hook_slow (every "
        "netfilter hook, connection tracking included) is divided by the "
        "packets the gateway forwarded (ForwDatagrams), "
        f"{conntrack.packets:,} and {capport.packets:,}. perf samples every "
        "namespace, so netfilter work of other traffic on the machine would "
        "count too."
    )


def _install(testbed: Testbed, other_devices: int, result: Result) -> None:
    """Install capport's table with client c2 and other_devices fake devices."""
    device = f"{CLIENT_MACS[CLIENT]}/{CLIENT_ADDRESSES[CLIENT]}"
    config = str(testbed.lab.config_path)
    install = ["install", config, str(other_devices), "--device", device]
    testbed.worker("gw", WORKER, install, record=result.commands)


def log_in(testbed: Testbed, role: str, record: list[str] | None = None) -> None:
    """Click through the portal from client role's own interface."""
    device = {
        "interface": "eth0",
        "mac": CLIENT_MACS[role],
        "ip": CLIENT_ADDRESSES[role],
    }
    request = {
        "devices": [device],
        "gateway": GATEWAY_LAN_ADDRESS,
        "concurrency": 1,
        "portal": f"{GATEWAY_LAN_ADDRESS}:80",
        "upstream": f"{UPSTREAM_ADDRESS}:443",
    }
    loadgen = "capport.bench.loadgen"
    output = testbed.worker(role, loadgen, ["login"], request, record=record)
    login = output["logins"][0]
    if "error" in login:
        raise BenchError(f"client {role} could not log in: {login['error']}")


def _start_server(testbed: Testbed, result: Result) -> subprocess.Popen[bytes]:
    argv = ["iperf3", "--server", "--bind", UPSTREAM_ADDRESS, "--port", str(IPERF_PORT)]
    result.commands.append(shlex.join(testbed.argv("up", argv, SERVER_CPU)))
    process = subprocess.Popen(
        testbed.argv("up", argv, SERVER_CPU),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    if process.poll() is not None:
        raise BenchError(
            f"iperf3 --server exited at once with status {process.returncode}"
        )
    return process


def iperf_argv(seconds: int) -> list[str]:
    # --omit 1 leaves TCP's slow start out of the average.
    return [
        "iperf3",
        "--client",
        UPSTREAM_ADDRESS,
        "--port",
        str(IPERF_PORT),
        "--time",
        str(seconds),
        "--omit",
        "1",
        "--json",
    ]


def _iperf(testbed: Testbed, settings: Settings, result: Result) -> IperfResult:
    argv = testbed.argv(CLIENT, iperf_argv(settings.iperf_seconds), LOAD_CPU)
    command = shlex.join(argv)
    if command not in result.commands:
        result.commands.append(command)
    try:
        output = run_checked(argv, timeout=settings.iperf_seconds + 30)
    except BenchError as error:
        # iperf3 --json reports its own errors as JSON with a non-zero status.
        raise BenchError(f"iperf3 from {CLIENT} failed: {error}") from None
    return parse_iperf3(output)


def _judge(
    result: Result,
    settings: Settings,
    summaries: dict[str, SetupSummary],
    runs: dict[str, list[IperfResult]],
    granted: dict[str, float],
) -> None:
    capport, plain = summaries[CAPPORT], summaries[NONE]
    capport_rates = [run.gigabits_per_second for run in runs[CAPPORT]]
    plain_rates = [run.gigabits_per_second for run in runs[NONE]]
    measured = (
        f"with capport {capport.median_rate:.2f} Gbit/s, without "
        f"{plain.median_rate:.2f} Gbit/s, medians of {settings.iperf_rounds} "
        f"round(s); the per-round ratios ranged from {capport.min_ratio:.2f}x "
        f"to {capport.max_ratio:.2f}x, and the rates varied between rounds by "
        f"{spread(capport_rates):.0%} and {spread(plain_rates):.0%} of their "
        "medians"
    )
    result.figures.append(
        Figure(
            name=f"throughput with {settings.other_devices:,} other devices authorised",
            value=capport.median_ratio,
            unit="x",
            measured=measured,
            reference="the same laboratory without any nftables rules",
            target=at_least(0.95, "x"),
        )
    )
    result.figures.append(
        Figure(
            name=f"authorising {settings.other_devices:,} devices in one transaction",
            value=granted["seconds"] * 1000,
            unit="ms",
            measured="NftablesEnforcer.grant() in the gateway's namespace",
        )
    )
    result.notes.append(_setups_table(settings, summaries))
    result.notes.append(_rounds_table(runs))
    result.method += [
        f"Client c2 logs in through the portal (GET the splash page, POST Accept), "
        f"then {settings.other_devices:,} fake devices (MAC and address in "
        "198.18.0.0/15) are added to the same set through the enforcer.",
        f"iperf3 sends from c2 (CPU {LOAD_CPU}) to the upstream host (server on "
        f"CPU {SERVER_CPU}) for {settings.iperf_seconds} s, leaving out the first "
        "second; one TCP stream. The rate is the receiver's.",
        "Each round measures four setups of the gateway's rules back to back, "
        "in reversed order every other round: capport's table with c2 and the "
        "fake devices, no nftables rules at all (the reference), a table with "
        "one accept rule on the forward hook, and a table with connection "
        "tracking and NAT hooks but none of capport's rules. Before each run "
        "the gateway's tables are listed and the run stops unless they are "
        "exactly the setup's; capport's set must hold c2 and every fake device.",
        "Capport's table is installed through the enforcer, as the daemon "
        "installs it, and the other setups with `nft -f`. The gateway is "
        "restarted at the end to reconcile the table with the store.",
        "A setup's ratio is the median over rounds of its rate divided by the "
        "no-rules rate of the same round, so a change in the machine's load "
        "between rounds cancels out.",
    ]


def _setups_table(settings: Settings, summaries: dict[str, SetupSummary]) -> str:
    lines = [
        f"Every setup, measured in the same {settings.iperf_rounds} round(s). "
        "The ratio is the median over rounds of the setup's rate divided by "
        "the no-rules rate of the same round.",
        "",
        "| setup | median Gbit/s | ratio to no rules | lowest and highest ratio |",
        "| --- | --- | --- | --- |",
    ]
    for summary in summaries.values():
        lines.append(
            f"| {summary.label} | {summary.median_rate:.2f} "
            f"| {summary.median_ratio:.2f}x "
            f"| {summary.min_ratio:.2f}x to {summary.max_ratio:.2f}x |"
        )
    lines += [
        "",
        "The difference is kernel work per packet, which a Python profile "
        "cannot show: capport's daemon is not on the packet path. Capport's "
        "table needs connection tracking (its NAT redirect and its `ct state` "
        "rules), so the connection-tracking setup is the least a table like "
        "it can cost.",
    ]
    return "\n".join(lines)


def _rounds_table(runs: dict[str, list[IperfResult]]) -> str:
    keys = list(runs)
    lines = [
        "| round | " + " | ".join(keys) + " |",
        "| --- |" + " --- |" * len(keys),
    ]
    for number, row in enumerate(zip(*runs.values(), strict=True), 1):
        cells = [
            f"{run.gigabits_per_second:.2f} Gbit/s ({run.retransmits} retransmits)"
            for run in row
        ]
        lines.append(f"| {number} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
