"""RFC 8910 provisioning in the laboratory: real dnsmasq, real dhclient.

The laboratory is built with DHCP: the clients lease their IPv4 addresses
from dnsmasq in the gateway's namespace and ask DHCPv6 for options, so the
Captive Portal API URI is read back from what dhclient itself recorded.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from clients import is_captive
from netns import Namespace

from capport.client.leases import parse_dhclient_leases
from capport.lab import Lab, down, up
from capport.lab.dhcp import read_lease, request_dhcp6_options
from capport.lab.topology import (
    CAPTIVE_API_URI,
    DHCP_RANGE,
    GATEWAY_LAN_ADDRESS,
    GATEWAY_LAN_ADDRESS6,
    ORIGIN_HOST,
    PORTAL_HOST,
    UPSTREAM_ADDRESS,
    UPSTREAM_ADDRESS6,
)

pytestmark = pytest.mark.lab

DNS_A = 1
DNS_AAAA = 28


@pytest.fixture(scope="module")
def dhcp_lab(new_prefix) -> Iterator[Lab]:  # type: ignore[no-untyped-def]
    from conftest import _keep_logs as keep_logs
    from conftest import missing_requirement

    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    prefix = new_prefix("d")
    built = up(prefix, dhcp=True)
    try:
        yield built
    finally:
        keep_logs(built)
        down(prefix)


def dns_query(lab: Lab, role: str, server: str, name: str, qtype: int) -> list[str]:
    """Send one DNS query from role's namespace; return the answer's addresses."""
    query_id = secrets.randbelow(1 << 16)
    question = b"".join(
        bytes([len(label)]) + label.encode() for label in name.split(".")
    )
    packet = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    packet += question + b"\0" + struct.pack("!HH", qtype, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with Namespace(lab.namespace(role)).entered():
        sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(3)
        sock.sendto(packet, (server, 53))
        reply = sock.recv(4096)
    return _answers(reply, query_id)


def _answers(reply: bytes, query_id: int) -> list[str]:
    reply_id, flags, questions, answers = struct.unpack("!HHHH", reply[:8])
    assert reply_id == query_id
    assert flags & 0xF == 0, f"DNS error code {flags & 0xF}"
    offset = 12
    for _ in range(questions):
        offset = _skip_name(reply, offset) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(reply, offset)
        kind, _, _, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        data = reply[offset + 10 : offset + 10 + length]
        if kind == DNS_A:
            found.append(str(IPv4Address(data)))
        elif kind == DNS_AAAA:
            found.append(str(IPv6Address(data)))
        offset += 10 + length
    return found


def _skip_name(packet: bytes, offset: int) -> int:
    while packet[offset]:
        if packet[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += packet[offset] + 1
    return offset + 1


# DHCPv4


def test_dhcpv4_lease_carries_captive_portal_uri(dhcp_lab: Lab) -> None:
    text = dhcp_lab.dhclient_lease_path("c1", 4).read_text()
    assert parse_dhclient_leases(text) == CAPTIVE_API_URI


def test_dhcpv4_lease_address_in_range(dhcp_lab: Lab) -> None:
    lease = read_lease(dhcp_lab.dhclient_lease_path("c2", 4))
    first, last = (ip_address(a) for a in DHCP_RANGE)
    assert first <= ip_address(lease["fixed-address"]) <= last
    assert lease["routers"] == GATEWAY_LAN_ADDRESS
    assert lease["domain-name-servers"] == GATEWAY_LAN_ADDRESS


def test_leased_client_is_captive(dhcp_lab: Lab) -> None:
    assert dhcp_lab.gateway_running()
    assert is_captive(dhcp_lab, "c1")


def test_dhcpv4_renewal_passes_gateway_firewall(dhcp_lab: Lab) -> None:
    lease_path = dhcp_lab.state_dir / "renewal-c2.leases"
    lease_path.touch()
    argv = [
        "dhclient", "-1", "-4",
        "-cf", str(dhcp_lab.state_dir / "dhclient.conf"),
        "-lf", str(lease_path),
        "-pf", str(dhcp_lab.state_dir / "renewal-c2.pid"),
        "-sf", "/bin/true",
        "eth0",
    ]  # fmt: skip
    result = dhcp_lab.run("c2", argv, timeout=30)
    assert result.returncode == 0, result.stderr
    assert parse_dhclient_leases(lease_path.read_text()) == CAPTIVE_API_URI


# DHCPv6


def test_dhcpv6_reply_carries_captive_portal_uri(dhcp_lab: Lab) -> None:
    # Asked again now, with the gateway's firewall in place.
    options = request_dhcp6_options(dhcp_lab, "c2", timeout=20)
    assert options["dhcp6.captive-portal"] == CAPTIVE_API_URI


def test_dhcpv6_reply_names_gateway_dns(dhcp_lab: Lab) -> None:
    options = request_dhcp6_options(dhcp_lab, "c1", timeout=20)
    assert options["dhcp6.name-servers"] == GATEWAY_LAN_ADDRESS6


# DNS


@pytest.mark.parametrize("server", [GATEWAY_LAN_ADDRESS, GATEWAY_LAN_ADDRESS6])
def test_dnsmasq_resolves_origin(dhcp_lab: Lab, server: str) -> None:
    assert dns_query(dhcp_lab, "c1", server, ORIGIN_HOST, DNS_A) == [UPSTREAM_ADDRESS]
    assert dns_query(dhcp_lab, "c1", server, ORIGIN_HOST, DNS_AAAA) == [
        UPSTREAM_ADDRESS6
    ]


def test_dnsmasq_resolves_portal(dhcp_lab: Lab) -> None:
    server = GATEWAY_LAN_ADDRESS
    assert dns_query(dhcp_lab, "c1", server, PORTAL_HOST, DNS_A) == [
        GATEWAY_LAN_ADDRESS
    ]
    assert dns_query(dhcp_lab, "c1", server, PORTAL_HOST, DNS_AAAA) == [
        GATEWAY_LAN_ADDRESS6
    ]


def test_dnsmasq_forwards_no_other_name(dhcp_lab: Lab) -> None:
    with pytest.raises(AssertionError, match="DNS error code"):
        dns_query(dhcp_lab, "c1", GATEWAY_LAN_ADDRESS, "example.com", DNS_A)
