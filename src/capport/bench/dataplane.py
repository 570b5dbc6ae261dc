"""Benchmark 2: throughput of an authorised device, with and without capport.

Client c2 logs in through the portal, and other_devices fake devices are
authorised with it through the enforcer in one transaction. iperf3 then
sends from c2 to the upstream host through the gateway. The reference is
the same laboratory with capport's table deleted, so the gateway only
routes. Rounds alternate between the two, and the table is installed again
through the enforcer after each reference round.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

from capport.bench.figures import (
    Figure,
    Result,
    at_least,
    median,
    paired_ratio,
    spread,
)
from capport.bench.parsing import IperfResult, parse_iperf3
from capport.bench.settings import Settings
from capport.bench.testbed import LOAD_CPU, SERVER_CPU, BenchError, Testbed, run_checked
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

# Connection tracking and a NAT hook, as capport's table has them, without
# any of its rules: the diagnosis's middle configuration.
CONNTRACK_TABLE_NAME = "capbench_ct"
CONNTRACK_TABLE = f"""\
table inet {CONNTRACK_TABLE_NAME} {{
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
    }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ct state established,related accept
    }}
}}
"""


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    config = str(testbed.lab.config_path)
    step("logging client c2 in through the portal")
    log_in(testbed, CLIENT, result.commands)
    step(f"authorising {settings.other_devices:,} other devices")
    granted = testbed.worker(
        "gw",
        WORKER,
        ["grant", config, str(settings.other_devices)],
        record=result.commands,
    )
    server = _start_server(testbed, result)
    try:
        with_capport: list[IperfResult] = []
        without: list[IperfResult] = []
        for number in range(1, settings.iperf_rounds + 1):
            # Odd rounds measure with capport first, even rounds without it
            # first, so neither side always runs right after a table change.
            if number % 2:
                step(f"with capport, round {number}")
                with_capport.append(_iperf(testbed, settings, result))
            testbed.worker("gw", WORKER, ["uninstall", config], record=result.commands)
            step(f"without capport, round {number}")
            without.append(_iperf(testbed, settings, result))
            _install(testbed, settings.other_devices, result)
            if not number % 2:
                step(f"with capport, round {number}")
                with_capport.append(_iperf(testbed, settings, result))
        _judge(result, settings, with_capport, without, granted)
        if result.figures[0].met is False:
            _diagnose(testbed, settings, result, step)
    finally:
        server.terminate()
        server.wait(timeout=10)
        step("restarting the gateway to reconcile its table with the store")
        testbed.restart_gateway()
    return result


def _install(testbed: Testbed, other_devices: int, result: Result) -> None:
    """Install capport's table with client c2 and other_devices fake devices."""
    device = f"{CLIENT_MACS[CLIENT]}/{CLIENT_ADDRESSES[CLIENT]}"
    config = str(testbed.lab.config_path)
    install = ["install", config, str(other_devices), "--device", device]
    testbed.worker("gw", WORKER, install, record=result.commands)


def _diagnose(
    testbed: Testbed,
    settings: Settings,
    result: Result,
    step: Callable[[str], None],
) -> None:
    """Measure the parts of capport's table separately, to show which one costs.

    The table enables connection tracking (its NAT chain and its `ct state`
    rules need it), and its forward chain looks every packet up in the set.
    A table with connection tracking and no other rule, and capport's table
    with an empty set, separate the two. Each round measures every
    configuration once, and each is compared with the no-rules run of the
    same round.
    """
    others = settings.other_devices
    labels = {
        "none": "no rules",
        "conntrack": "connection tracking only",
        "empty": "capport's table, c2 alone in the set",
        "full": f"capport's table, c2 and {others:,} others",
    }
    rates: dict[str, list[float]] = {key: [] for key in labels}
    nft = shlex.join(testbed.argv("gw", ["nft", "-f", "-"]))
    result.commands.append(f"{nft} <<'EOF'\n{CONNTRACK_TABLE}EOF")
    for number in range(1, settings.diagnosis_rounds + 1):
        for key in labels:
            step(f"diagnosis round {number}: {labels[key]}")
            _configure(testbed, key, others, result)
            rates[key].append(_iperf(testbed, settings, result).gigabits_per_second)
    # The benchmark ends with capport's full table in place, as it began.
    lines = [
        "To find which part of the table costs throughput, each of these "
        f"configurations was measured once per round, in {settings.diagnosis_rounds} "
        "round(s). The ratio is the median over rounds of its rate divided by "
        "the no-rules rate of the same round.",
        "",
        "| configuration | median Gbit/s | ratio to no rules |",
        "| --- | --- | --- |",
    ]
    for key, label in labels.items():
        paired = paired_ratio(rates[key], rates["none"])
        lines.append(f"| {label} | {median(rates[key]):.2f} | {paired:.2f}x |")
    lines += [
        "",
        "The difference is kernel work per packet, which a Python profile "
        "cannot show: capport's daemon is not on the packet path.",
    ]
    result.notes.append("\n".join(lines))


def _configure(testbed: Testbed, key: str, others: int, result: Result) -> None:
    """Leave the gateway with exactly the rules of one diagnosis configuration."""
    config = str(testbed.lab.config_path)
    testbed.worker("gw", WORKER, ["uninstall", config])
    # Adding the table before deleting it makes the delete succeed always.
    remove = (
        f"table inet {CONNTRACK_TABLE_NAME}\ndelete table inet {CONNTRACK_TABLE_NAME}\n"
    )
    testbed.run("gw", ["nft", "-f", "-"], input=remove)
    if key == "conntrack":
        testbed.run("gw", ["nft", "-f", "-"], input=CONNTRACK_TABLE)
    elif key == "empty":
        _install(testbed, 0, result)
    elif key == "full":
        _install(testbed, others, result)


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
    with_capport: list[IperfResult],
    without: list[IperfResult],
    granted: dict[str, float],
) -> None:
    capport = [run.gigabits_per_second for run in with_capport]
    plain = [run.gigabits_per_second for run in without]
    measured = (
        f"with capport {median(capport):.2f} Gbit/s, without {median(plain):.2f} "
        f"Gbit/s, medians of {settings.iperf_rounds} round(s); the rates varied "
        f"between rounds by {spread(capport):.0%} and {spread(plain):.0%} of their "
        "medians"
    )
    result.figures.append(
        Figure(
            name=f"throughput with {settings.other_devices:,} other devices authorised",
            value=paired_ratio(capport, plain),
            unit="x",
            measured=measured,
            reference="the same laboratory without capport's table",
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
    lines = ["| round | with capport | without | retransmits (with / without) |"]
    lines.append("| --- | --- | --- | --- |")
    for number, (a, b) in enumerate(zip(with_capport, without, strict=True), 1):
        lines.append(
            f"| {number} | {a.gigabits_per_second:.2f} Gbit/s "
            f"| {b.gigabits_per_second:.2f} Gbit/s "
            f"| {a.retransmits} / {b.retransmits} |"
        )
    result.notes.append("\n".join(lines))
    result.method += [
        f"Client c2 logs in through the portal (GET the splash page, POST Accept), "
        f"then {settings.other_devices:,} fake devices (MAC and address in "
        "198.18.0.0/15) are added to the same set through the enforcer.",
        f"iperf3 sends from c2 (CPU {LOAD_CPU}) to the upstream host (server on "
        f"CPU {SERVER_CPU}) for {settings.iperf_seconds} s, leaving out the first "
        "second; one TCP stream. The rate is the receiver's.",
        "Every packet c2 sends passes capport's forward chain, whose first "
        "rule looks the device up in the authorised set and counts it.",
        "The reference rounds run with table `inet capport` deleted, so the "
        "gateway routes with no nftables rules (and no connection tracking) at "
        "all. After each, the table is installed again through the enforcer "
        "with c2 and the fake devices. The gateway is restarted at the end to "
        "reconcile the table with the store.",
        "Each round measures both configurations back to back, in alternating "
        "order, and the figure is the median of the per-round ratios.",
    ]
