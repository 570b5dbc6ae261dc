"""Many devices click through the portal at once, and every one gets access.

The benchmarks' testbed gives client c2 simulated devices: macvlan
interfaces, each with its own MAC and address. Their load generator logs
them in 32 at a time. Each login fetches the splash page, posts Accept,
then opens a new connection to the upstream host, which completes only
once the gateway forwards it.
Logins that arrive together are granted in shared batches, so this checks
that every device of a batch is in the store and the kernel set and that
each grant was in effect before its 303.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from clients import kernel_elements, store_sessions

from capport.bench import testbed as bench
from capport.bench.devices import DEVICE_GATEWAY, LinkedDevice
from capport.bench.grants import PORTAL, UPSTREAM, LoginSummary, summarise_logins

pytestmark = pytest.mark.lab

DEVICES = 96
CONCURRENCY = 32


@pytest.fixture(scope="module")
def testbed(new_prefix: Callable[[str], str]) -> Iterator[bench.Testbed]:
    with bench.open_testbed(new_prefix("l")) as built:
        yield built


@pytest.fixture(scope="module")
def logged_in(testbed: bench.Testbed) -> tuple[list[LinkedDevice], LoginSummary]:
    devices = testbed.add_devices(DEVICES)
    request = {
        "devices": [device.to_json() for device in devices],
        "gateway": str(DEVICE_GATEWAY),
        "concurrency": CONCURRENCY,
        "portal": PORTAL,
        "upstream": UPSTREAM,
    }
    output = testbed.worker(
        bench.DEVICE_ROLE, "capport.bench.loadgen", ["login"], request
    )
    return devices, summarise_logins(output["logins"])


def test_concurrent_logins_all_succeed(
    logged_in: tuple[list[LinkedDevice], LoginSummary],
) -> None:
    _, summary = logged_in

    assert summary.errors == ()
    assert summary.succeeded == DEVICES


def test_concurrent_grants_precede_their_answers(
    logged_in: tuple[list[LinkedDevice], LoginSummary],
) -> None:
    _, summary = logged_in

    # The first upstream connection after each 303 went through.
    assert summary.late_grants == 0


def test_concurrent_logins_reach_store_and_kernel(
    testbed: bench.Testbed, logged_in: tuple[list[LinkedDevice], LoginSummary]
) -> None:
    devices, _ = logged_in
    expected = {(device.mac, str(device.ip)) for device in devices}

    stored = set(store_sessions(testbed.lab))
    authorised = set(kernel_elements(testbed.lab))

    assert expected <= stored
    assert expected <= authorised
