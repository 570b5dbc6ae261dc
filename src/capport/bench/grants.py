"""Benchmark 3: how fast a login takes effect, and logins per second.

Simulated devices in client c2 click through the portal. Each is a macvlan
interface with its own MAC and address. It requests the splash page, POSTs
Accept with the page's CSRF token, and on the 303 opens a new TCP
connection to the upstream host. That connection completes only once the
gateway forwards its first packet, because a captive device's TCP is reset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from capport.bench.causes import describe_cpu_profile
from capport.bench.devices import DEVICE_GATEWAY, LinkedDevice
from capport.bench.figures import (
    Figure,
    Result,
    at_least,
    percentile,
    under,
)
from capport.bench.process import cpu_seconds
from capport.bench.profiling import INSTALL_HINT, Recording, py_spy
from capport.bench.settings import Settings
from capport.bench.testbed import DEVICE_ROLE, LOAD_CPU, SERVER_CPU, Testbed
from capport.lab.topology import GATEWAY_LAN_ADDRESS, UPSTREAM_ADDRESS

NAME = "logins"
TITLE = "3. Login latency and logins per second"

# The origin accepts plain TCP on 443. Port 80 would not do: a captive
# device's port 80 is redirected to the responder and would connect anyway.
UPSTREAM = f"{UPSTREAM_ADDRESS}:443"
PORTAL = f"{GATEWAY_LAN_ADDRESS}:80"


@dataclass(frozen=True, slots=True)
class LoginSummary:
    """The measurements of a batch of logins, in milliseconds and logins per second."""

    attempted: int
    succeeded: int
    errors: tuple[str, ...]
    forwarded_ms: tuple[float, ...]
    answered_ms: tuple[float, ...]
    late_grants: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else float("nan")


def summarise_logins(logins: list[dict[str, Any]]) -> LoginSummary:
    """Reduce the load generator's per-login records to a LoginSummary.

    The rate counts the logins that succeeded over the time from the first
    splash request to the last Accept response. A late grant is a login whose
    first upstream connection was still rejected after the 303.
    """
    done = [login for login in logins if "error" not in login]
    errors = tuple(login["error"] for login in logins if "error" in login)
    forwarded = tuple((x["forwarded"] - x["posted"]) * 1000 for x in done)
    answered = tuple((x["answered"] - x["posted"]) * 1000 for x in done)
    seconds = 0.0
    if done:
        seconds = max(x["answered"] for x in done) - min(x["started"] for x in done)
    return LoginSummary(
        attempted=len(logins),
        succeeded=len(done),
        errors=errors,
        forwarded_ms=forwarded,
        answered_ms=answered,
        late_grants=sum(1 for x in done if x["attempts"] > 1),
        seconds=seconds,
    )


def run(testbed: Testbed, settings: Settings, step: Callable[[str], None]) -> Result:
    result = Result(NAME, TITLE)
    total = settings.latency_logins + settings.rate_logins
    step(f"creating {total} simulated devices")
    one_by_one = testbed.add_devices(settings.latency_logins)
    together = testbed.add_devices(settings.rate_logins)
    step(f"{len(one_by_one)} logins one at a time")
    latency = _logins(testbed, one_by_one, 1, result.commands)
    step(f"{len(together)} logins, {settings.login_concurrency} at a time")
    load = _logins(testbed, together, settings.login_concurrency, result.commands)
    _judge(result, settings, latency, load)
    if any(figure.met is False for figure in result.figures):
        _profile(testbed, settings, result, step)
    return result


def _logins(
    testbed: Testbed,
    devices: list[LinkedDevice],
    concurrency: int,
    record: list[str] | None = None,
) -> LoginSummary:
    request = {
        "devices": [device.to_json() for device in devices],
        "gateway": str(DEVICE_GATEWAY),
        "concurrency": concurrency,
        "portal": PORTAL,
        "upstream": UPSTREAM,
    }
    loadgen = "capport.bench.loadgen"
    output = testbed.worker(DEVICE_ROLE, loadgen, ["login"], request, record=record)
    return summarise_logins(output["logins"])


def _judge(
    result: Result, settings: Settings, latency: LoginSummary, load: LoginSummary
) -> None:
    p50 = percentile(latency.forwarded_ms, 0.5)
    p99 = percentile(latency.forwarded_ms, 0.99)
    result.figures.append(
        Figure(
            name="login to first forwarded packet, p99",
            value=p99,
            unit="ms",
            measured=(
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {latency.succeeded} "
                f"logins one at a time; Accept answered in p50 "
                f"{percentile(latency.answered_ms, 0.5):.2f} ms"
            ),
            target=under(10.0, "ms"),
        )
    )
    result.figures.append(
        Figure(
            name="logins per second, click-through",
            value=load.rate,
            unit="logins/s",
            measured=(
                f"{load.succeeded} of {load.attempted} devices logged in, "
                f"{settings.login_concurrency} at a time, in {load.seconds:.2f} s; "
                "login to first forwarded packet under this load: p50 "
                f"{percentile(load.forwarded_ms, 0.5):.1f} ms, p99 "
                f"{percentile(load.forwarded_ms, 0.99):.1f} ms"
            ),
            target=at_least(500.0, "logins/s"),
        )
    )
    for summary in (latency, load):
        if summary.errors:
            examples = "; ".join(summary.errors[:3])
            result.notes.append(
                f"{len(summary.errors)} of {summary.attempted} logins failed, "
                f"for example: {examples}"
            )
        if summary.late_grants:
            result.notes.append(
                f"In {summary.late_grants} logins the first connection after the "
                "303 was still rejected, so the grant took effect after the answer."
            )
    result.method += [
        "Each simulated device is a macvlan interface in client c2 with its own "
        "MAC and an address in 198.18.0.0/15; sockets are bound to it "
        "(SO_BINDTODEVICE), so the gateway sees that MAC and address.",
        "A login is one keep-alive connection to the portal: GET / (the "
        "splash page), then POST /accept with the page's CSRF token, answered "
        "by 303. Latency runs from sending the POST to the completed TCP "
        "handshake of a new connection to the upstream host (port 443); a "
        "rejected attempt is retried every millisecond.",
        f"The load generator (Python asyncio, client c2) runs on CPU {LOAD_CPU} "
        f"and the gateway daemon on CPU {SERVER_CPU}. The session store is the "
        "laboratory's SQLite file in /run (tmpfs) with synchronous=full, so a "
        "commit costs no disk flush here; on a disk each one would.",
        f"Latency: {settings.latency_logins} devices one after another. Rate: "
        f"{settings.rate_logins} other devices, {settings.login_concurrency} at "
        "a time; each device logs in once.",
    ]


def _profile(
    testbed: Testbed, settings: Settings, result: Result, step: Callable[[str], None]
) -> None:
    executable = py_spy()
    if executable is None:
        result.notes.append(INSTALL_HINT)
        return
    step(f"profiling the daemon during {settings.profile_logins} logins")
    devices = testbed.add_devices(settings.profile_logins)
    pid = testbed.gateway_pid
    output = testbed.lab.state_dir / "profile-logins.txt"
    recording = Recording(executable, pid, settings.profile_seconds, output)
    recording.start()
    # py-spy needs a moment to attach before the load starts.
    time.sleep(0.5)
    cpu_before = cpu_seconds(pid)
    summary = _logins(testbed, devices, settings.login_concurrency)
    cpu_used = cpu_seconds(pid) - cpu_before
    profile = recording.finish(
        f"capport's daemon during {summary.succeeded} logins, "
        f"{settings.login_concurrency} at a time ({summary.rate:.0f} logins/s)"
    )
    if summary.succeeded == 0:
        examples = "; ".join(summary.errors[:3])
        result.notes.append(
            "No profile: no login succeeded while it was taken, for example: "
            f"{examples}"
        )
        return
    # The daemon is idle while the load generator starts, so its CPU time
    # is divided by the time the logins took.
    cpu_share = cpu_used / summary.seconds
    cause = describe_cpu_profile(profile, cpu_share, "the daemon (all its threads)")
    result.profiles.append(replace(profile, cause=cause))
