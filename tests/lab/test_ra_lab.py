"""The Captive-Portal RA option (RFC 8910 section 2.3) from the running gateway.

A raw ICMPv6 listener in a client's namespace records every router
advertisement on eth0. The gateway advertises every 4 s here, so a
periodic RA arrives within a short wait. dnsmasq keeps sending its own RAs
for SLAAC from the same link-local address.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capport.lab import Lab, down, up
from capport.lab.topology import CAPTIVE_API_URI
from capport.provisioning import DNSMASQ_ROUTER_LIFETIME

pytestmark = pytest.mark.lab

LISTENER = Path(__file__).with_name("ra_listener.py")
RA_INTERVAL = 4


@pytest.fixture(scope="module")
def ra_lab(new_prefix) -> Iterator[Lab]:  # type: ignore[no-untyped-def]
    from conftest import _keep_logs as keep_logs
    from conftest import missing_requirement

    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    prefix = new_prefix("a")
    extra = {"provisioning": {"ra_interval": RA_INTERVAL}}
    built = up(prefix, extra_config=extra)
    try:
        yield built
    finally:
        keep_logs(built)
        down(prefix)


def link_local(lab: Lab, role: str, interface: str) -> str:
    argv = ["ip", "-6", "-o", "address", "show", "dev", interface, "scope", "link"]
    output = lab.run(role, argv, check=True).stdout
    return output.split("inet6 ")[1].split("/")[0]


def listen(lab: Lab, role: str, seconds: float, mode: str = "") -> list[dict[str, Any]]:
    """Run the listener in role's namespace; mode is "", "solicit" or "first"."""
    argv = [sys.executable, str(LISTENER), str(seconds)]
    if mode:
        argv.append(mode)
    result = lab.run(role, argv, check=True, timeout=seconds + 10)
    return [json.loads(line) for line in result.stdout.splitlines()]


def captive_ras(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["uri"] is not None]


def test_solicitation_reply_carries_uri(ra_lab: Lab) -> None:
    client = link_local(ra_lab, "c1", "eth0")
    records = listen(ra_lab, "c1", 2.0, mode="solicit")
    # The reply to a solicitation from a link-local address is unicast.
    answers = [r for r in captive_ras(records) if r["destination"] == client]
    assert answers, records
    assert answers[0]["uri"] == CAPTIVE_API_URI


def test_captive_ra_comes_from_gateway_link_local(ra_lab: Lab) -> None:
    gateway = link_local(ra_lab, "gw", "lan0")
    records = captive_ras(listen(ra_lab, "c2", 2.0, mode="solicit"))
    assert records
    assert {record["source"] for record in records} == {gateway}
    assert all(record["hop_limit"] == 255 for record in records)
    assert all(record["code"] == 0 for record in records)


def test_captive_ra_option_padded_to_eight_octets(ra_lab: Lab) -> None:
    records = captive_ras(listen(ra_lab, "c1", 2.0, mode="solicit"))
    assert records
    packet = bytes.fromhex(records[0]["hex"])
    option = packet[16:]
    assert option[0] == 37
    assert option[1] * 8 == len(option)
    assert option[2:].rstrip(b"\0") == CAPTIVE_API_URI.encode()


def test_captive_ra_keeps_dnsmasq_router_lifetime(ra_lab: Lab) -> None:
    records = captive_ras(listen(ra_lab, "c1", 2.0, mode="solicit"))
    assert records
    assert records[0]["router_lifetime"] == DNSMASQ_ROUTER_LIFETIME


def test_periodic_ra_carries_captive_portal_uri(ra_lab: Lab) -> None:
    # Between 0.33 and 1 times ra_interval apart, so two intervals and a
    # margin for a loaded machine hold at least one.
    records = listen(ra_lab, "c2", 2 * RA_INTERVAL + 4)
    periodic = [r for r in captive_ras(records) if r["destination"] == "ff02::1"]
    assert periodic, records
    assert all(record["uri"] == CAPTIVE_API_URI for record in periodic)


def test_client_keeps_ipv6_default_route(ra_lab: Lab) -> None:
    # Waits for a periodic RA rather than soliciting one, because dnsmasq
    # would reply to a solicitation too and restore a removed route.
    records = listen(ra_lab, "c1", 2 * RA_INTERVAL + 4, mode="first")
    assert captive_ras(records), records
    gateway = link_local(ra_lab, "gw", "lan0")
    routes = ra_lab.run("c1", ["ip", "-6", "route", "show", "default"], check=True)
    assert f"via {gateway}" in routes.stdout
