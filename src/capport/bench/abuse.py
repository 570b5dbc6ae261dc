"""Benchmark 5: the responder's memory while idle and slow connections hold it.

Simulated devices, none of them logged in, open connections to the origin
that the gateway redirects to the responder. Half send nothing; the other
half send a request head that stops inside a header line and then add one
byte a second (slowloris). They are held until after the responder's
header_timeout, so the run also shows whether the responder closes them.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import time
from collections.abc import Callable
from typing import Any

from capport.bench.devices import DEVICE_GATEWAY
from capport.bench.figures import Figure, Result
from capport.bench.process import RssSampler, rss_megabytes
from capport.bench.settings import Settings
from capport.bench.testbed import DEVICE_ROLE, LOAD_CPU, BenchError, Testbed
from capport.config import ResponderSection, load_config
from capport.lab.topology import UPSTREAM_ADDRESS

NAME = "abuse"
TITLE = "5. Memory under abuse: idle and slow connections"

# The slow half sends this much of an unfinished header line at once, half
# of the default max_header_bytes, so the responder keeps a partial head of
# that size for each of them.
PARTIAL_HEADER_BYTES = 8192
# Seconds past header_timeout that the connections are held, so the
# responder's sweep has had time to close every one of them.
HOLD_MARGIN_SECONDS = 3.0


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    limits = load_config(testbed.lab.config_path).responder

    per_device = math.ceil(settings.abuse_connections / settings.abuse_devices)
    if per_device > limits.max_connections_per_client:
        raise BenchError(
            f"{per_device} connections per device exceed the responder's "
            f"max_connections_per_client ({limits.max_connections_per_client}); "
            "use more abuse devices"
        )
    step(f"creating {settings.abuse_devices} simulated devices")
    devices = testbed.add_devices(settings.abuse_devices)

    hold_seconds = limits.header_timeout + HOLD_MARGIN_SECONDS
    request = {
        "devices": [device.to_json() for device in devices],
        "gateway": str(DEVICE_GATEWAY),
        "per_device": per_device,
        "target": f"{UPSTREAM_ADDRESS}:80",
        "slow_fraction": 0.5,
        "partial_header_bytes": PARTIAL_HEADER_BYTES,
        "hold_seconds": hold_seconds,
    }
    pid = testbed.gateway_pid
    baseline = rss_megabytes(pid)

    step(f"holding {per_device * len(devices):,} connections for {hold_seconds:.0f} s")
    with RssSampler(pid) as sampler:
        observed = _hold(testbed, request, hold_seconds, result)

    step("waiting for the responder to release them")
    time.sleep(2.0)
    after = rss_megabytes(pid)
    _judge(result, limits, baseline, sampler.peak_megabytes, after, observed)
    return result


def _hold(
    testbed: Testbed, request: dict[str, Any], hold_seconds: float, result: Result
) -> dict[str, Any]:
    argv = testbed.argv(
        DEVICE_ROLE, testbed.python_argv("capport.bench.loadgen", ["hold"]), LOAD_CPU
    )
    result.commands.append(shlex.join(argv) + " < request.json")
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request))
        process.stdin.close()
        opened = json.loads(process.stdout.readline() or "{}")
        if opened.get("event") != "opened":
            errors = process.stderr.read() if process.stderr else ""
            raise BenchError(f"the load generator failed: {errors.strip()[-1000:]}")
        established = _responder_connections(testbed)
        probe = _probe(testbed)
        final = json.loads(process.stdout.readline() or "{}")
        process.wait(timeout=hold_seconds + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if "opened" not in final:
        raise BenchError(f"the load generator printed no result: {final!r}")
    return {**final, "established": established, "probe": probe}


def _responder_connections(testbed: Testbed) -> int:
    """Count established TCP connections on the responder's port."""
    port = load_config(testbed.lab.config_path).responder.port
    output = testbed.run(
        "gw", ["ss", "-H", "-t", "-n", "state", "established", "sport", "=", f":{port}"]
    )
    return len([line for line in output.splitlines() if line.strip()])


def _probe(testbed: Testbed) -> tuple[str, float]:
    """Request the origin from client c1 and return the status and seconds."""
    argv = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_total}",
        "--max-time",
        "5",
        f"http://{UPSTREAM_ADDRESS}/",
    ]
    output = testbed.run("c1", argv, timeout=15)
    status, seconds = output.split()
    return status, float(seconds)


def _judge(
    result: Result,
    limits: ResponderSection,
    baseline: float,
    peak: float,
    after: float,
    observed: dict[str, Any],
) -> None:
    established = observed["established"]
    opened = observed["opened"]
    growth_kb = (peak - baseline) * 1000 / established if established else math.nan
    status, probe_seconds = observed["probe"]
    result.figures += [
        Figure(
            name=f"resident memory with {established:,} idle or slow connections",
            value=peak,
            unit="MB",
            measured=(
                f"{baseline:.1f} MB before, {peak:.1f} MB at the peak "
                f"({growth_kb:.1f} KB per connection), {after:.1f} MB after release"
            ),
        ),
        Figure(
            name="another client's request during the abuse",
            value=probe_seconds * 1000,
            unit="ms",
            measured=f"curl from client c1 got status {status}",
        ),
    ]
    estimate = baseline + growth_kb * limits.max_connections / 1000
    result.notes += [
        f"The load generator opened {opened:,} connections ({observed['slow']:,} "
        f"slow, each with a {PARTIAL_HEADER_BYTES:,}-byte unfinished header line) "
        f"in {observed['open_seconds']:.2f} s; {observed['failed']} failed to "
        f"open. The responder had {established:,} of them established at once. By the "
        f"end of the hold it had closed {observed['closed_by_server']:,}.",
        "The bound: the responder accepts at most max_connections "
        f"({limits.max_connections:,}) connections, max_connections_per_client "
        f"({limits.max_connections_per_client}) per address, closes a request "
        f"head that is not complete after header_timeout ({limits.header_timeout:g} "
        "s) and an idle keep-alive connection after keepalive_timeout "
        f"({limits.keepalive_timeout:g} s). At the measured cost per connection, "
        f"max_connections would take about {estimate:.0f} MB (an estimate, "
        "extrapolated linearly from this run).",
    ]
    result.method += [
        f"Simulated devices in client c2 (not logged in) open connections to "
        f"{UPSTREAM_ADDRESS}:80, which the gateway redirects to the responder; "
        "every other connection is slow, the rest idle.",
        "The daemon's VmRSS is sampled every 0.1 s while they are held; "
        "`ss` in the gateway's namespace counts the responder's established "
        "connections once all are open, and client c1 requests the origin "
        "at the same moment.",
    ]
