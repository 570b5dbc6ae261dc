"""Enforcement in a real kernel: nftables, conntrack and the neighbour table.

Each test builds its own three namespaces with netns.py: a client, a gateway
and an upstream host. The enforcer is created inside the gateway namespace,
and the tests connect from the client namespace to the upstream host.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from netns import (
    Namespace,
    NamespaceLab,
    discard,
    echo,
    greet,
    namespace_lab_fixture,  # noqa: F401
    serve,
    wait_until,
)

from capport.config import Config, parse_config
from capport.enforce.base import Grant, Limits
from capport.enforce.nftables import NftablesEnforcer
from capport.enforce.ruleset import RulesetSpec, install_document
from capport.errors import ConfigError, EnforcementError
from capport.models import Device
from capport.netlink import NetlinkNeighbours, check_host

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

SPEC = RulesetSpec(
    table="capport",
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
)
CLIENT = Device.parse(NamespaceLab.client_mac, NamespaceLab.client_ip)
CLIENT6 = Device.parse(NamespaceLab.client_mac, NamespaceLab.client_ip6)
ABSENT = Device.parse("02:00:00:00:00:99", "192.0.2.99")

# Linux <linux/in.h> and <linux/errqueue.h>: IP_RECVERR queues ICMP errors
# as struct sock_extended_err, which starts with ee_errno, ee_origin,
# ee_type and ee_code.
IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2
ICMP_DEST_UNREACH = 3
ICMP_PKT_FILTERED = 13


@pytest.fixture
def enforcer(namespace_lab: NamespaceLab) -> Iterator[NftablesEnforcer]:
    """An enforcer bound to the gateway namespace, with the ruleset installed."""
    with namespace_lab.gateway.entered():
        enforcer = NftablesEnforcer(SPEC)
    enforcer.install([])
    try:
        yield enforcer
    finally:
        enforcer.close()


def gateway_config(interface: str = "lan0", address: str = "192.0.2.1") -> Config:
    return parse_config(
        {"gateway": {"interface": interface}, "portal": {"address": address}}
    )


def ruleset(lab: NamespaceLab) -> list[dict[str, Any]]:
    output = lab.gateway.run(["nft", "-j", "list", "ruleset"])
    return json.loads(output)["nftables"]


def assert_refused_at_once(lab: NamespaceLab, port: int, **kwargs: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        lab.connect(port, **kwargs)
    assert time.monotonic() - started < 0.5


def greeting(lab: NamespaceLab, port: int, **kwargs: str) -> bytes:
    """Connect and return the first bytes the server sends."""
    with lab.connect(port, **kwargs) as connection:
        return connection.recv(100)


def icmp_error(lab: NamespaceLab, port: int) -> tuple[int, int]:
    """Send one UDP datagram from the client; return the ICMP type and code."""
    sock = lab.client_socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        sock.connect((lab.upstream_ip, port))
        sock.send(b"query")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                _, ancillary, _, _ = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            for level, kind, data in ancillary:
                if level == socket.SOL_IP and kind == IP_RECVERR:
                    _, origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", data)
                    assert origin == SO_EE_ORIGIN_ICMP
                    return icmp_type, icmp_code
        raise AssertionError("no ICMP error arrived within 2 s")


# Installing


def test_install_twice_leaves_one_table(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 60)])
    enforcer.install([Grant(CLIENT, 60)])
    items = ruleset(namespace_lab)
    tables = [(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i]
    chains = [item["chain"]["name"] for item in items if "chain" in item]

    assert tables == [("inet", "capport")]
    assert sorted(chains) == [
        "download_limits",
        "forward",
        "from_lan",
        "input",
        "prerouting",
        "to_lan",
        "upload_limits",
    ]
    assert list(enforcer.authorised()) == [CLIENT]


def test_failed_install_keeps_previous_ruleset(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 60)])
    before = ruleset(namespace_lab)
    # The kernel rejects a nat chain on the forward hook, after the batch
    # has already deleted and rebuilt the table.
    document = install_document(SPEC, [Grant(ABSENT, 60)])
    document["nftables"].append(
        {
            "add": {
                "chain": {
                    "family": "inet",
                    "table": "capport",
                    "name": "broken",
                    "type": "nat",
                    "hook": "forward",
                    "prio": 0,
                    "policy": "accept",
                }
            }
        }
    )

    with pytest.raises(EnforcementError, match="installing a broken table failed"):
        enforcer.apply(document, "installing a broken table")

    after = ruleset(namespace_lab)
    assert [item for item in after if "set" not in item] == [
        item for item in before if "set" not in item
    ]
    assert list(enforcer.authorised()) == [CLIENT]


def test_uninstall_removes_table_and_is_repeatable(enforcer: NftablesEnforcer) -> None:
    enforcer.uninstall()

    assert not enforcer.exists()
    enforcer.uninstall()
    assert not enforcer.exists()


def test_grant_without_table_raises(enforcer: NftablesEnforcer) -> None:
    enforcer.uninstall()

    with pytest.raises(EnforcementError) as raised:
        enforcer.grant([Grant(CLIENT, 60)])

    assert "authorising 02:00:00:00:00:11/192.0.2.11" in str(raised.value)
    assert "No such file or directory" in str(raised.value)


# Rules only some devices need


def chain_text(lab: NamespaceLab, chain: str) -> str:
    return lab.gateway.run(["nft", "list", "chain", "inet", "capport", chain])


def test_install_leaves_unneeded_rules_out(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 60)])
    from_lan = chain_text(namespace_lab, "from_lan")
    to_lan = chain_text(namespace_lab, "to_lan")

    assert "@allowed4 accept" in from_lan
    assert "@blocked" not in from_lan
    assert "@trusted" not in from_lan
    assert "@limited_up4" not in from_lan
    assert "@limited_down4" not in to_lan


def test_limited_grant_adds_limit_rules(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.grant([Grant(CLIENT, 60, Limits(rate_up=1_000_000))])
    from_lan = chain_text(namespace_lab, "from_lan")
    to_lan = chain_text(namespace_lab, "to_lan")

    assert "@limited_up4 jump upload_limits" in from_lan
    assert "@limited_down4 jump download_limits" in to_lan
    assert "@blocked" not in from_lan


def test_limited_grant_applies_its_quota(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    # A quota of one byte is used up by the first packet, so the handshake
    # to the upstream host cannot complete.
    enforcer.grant([Grant(CLIENT, 60, Limits(quota_up=1))])

    with (
        serve(namespace_lab.upstream, "0.0.0.0", 443, greet(b"tls")),
        pytest.raises(TimeoutError),
    ):
        namespace_lab.connect(443, timeout=1.0)


def test_mac_lists_add_and_remove_rules(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.set_mac_lists(["02:00:00:00:00:77"], [])
    listed = chain_text(namespace_lab, "from_lan")
    enforcer.set_mac_lists([], [])
    emptied = chain_text(namespace_lab, "from_lan")

    assert "ether saddr @blocked drop" in listed
    assert "ether saddr @trusted accept" in listed
    assert "@blocked" not in emptied
    assert "@trusted" not in emptied


def test_blocked_mac_dropped_though_authorised(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.grant([Grant(CLIENT, 60)])

    with serve(namespace_lab.upstream, "0.0.0.0", 443, greet(b"tls")):
        assert greeting(namespace_lab, 443) == b"tls"
        enforcer.set_mac_lists([], [CLIENT.mac])
        with pytest.raises(TimeoutError):
            namespace_lab.connect(443, timeout=1.0)


# Unauthorised devices


def test_unauthorised_tcp_gets_reset(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    with serve(namespace_lab.upstream, "0.0.0.0", 443, echo):
        assert_refused_at_once(namespace_lab, 443)


def test_unauthorised_udp_gets_admin_prohibited(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    icmp_type, icmp_code = icmp_error(namespace_lab, 9)

    assert icmp_type == ICMP_DEST_UNREACH
    assert icmp_code == ICMP_PKT_FILTERED


def test_unauthorised_port_80_reaches_responder(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    with (
        serve(lab.gateway, "0.0.0.0", 8511, greet(b"responder")) as responder,
        serve(lab.upstream, "0.0.0.0", 80, greet(b"upstream")),
    ):
        first = greeting(lab, 80)

    assert first == b"responder"
    assert responder.peers[0][0] == lab.client_ip
    assert responder.local_addresses[0] == (lab.gateway_lan_ip, 8511)


def test_unauthorised_device_reaches_portal(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    with serve(lab.gateway, lab.gateway_lan_ip, 8080, greet(b"portal")):
        assert greeting(lab, 8080, host=lab.gateway_lan_ip) == b"portal"


def test_unauthorised_other_gateway_port_gets_reset(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    with serve(lab.gateway, "0.0.0.0", 2222, echo):
        assert_refused_at_once(lab, 2222, host=lab.gateway_lan_ip)


# Granting


def test_granted_device_reaches_upstream(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    enforcer.grant([Grant(CLIENT, 60)])

    with (
        serve(lab.gateway, "0.0.0.0", 8511, greet(b"responder")),
        serve(lab.upstream, "0.0.0.0", 80, greet(b"upstream")),
        serve(lab.upstream, "0.0.0.0", 443, greet(b"tls")),
    ):
        assert greeting(lab, 80) == b"upstream"
        assert greeting(lab, 443) == b"tls"


def test_granted_ipv6_device_reaches_upstream(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    lab.wait_for_ipv6()
    with serve(lab.upstream, "::", 443, greet(b"tls")):
        assert_refused_at_once(lab, 443, host=lab.upstream_ip6)
        enforcer.grant([Grant(CLIENT6, 60)])

        assert greeting(lab, 443, host=lab.upstream_ip6) == b"tls"


def test_grant_expires_by_itself(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    enforcer.grant([Grant(CLIENT, 2)])

    with serve(lab.upstream, "0.0.0.0", 443, greet(b"tls")):
        assert greeting(lab, 443) == b"tls"
        assert wait_until(lambda: CLIENT not in enforcer.authorised(), timeout=4)
        assert_refused_at_once(lab, 443)


def test_grant_replaces_timeout(enforcer: NftablesEnforcer) -> None:
    enforcer.grant([Grant(CLIENT, 3600)])
    enforcer.grant([Grant(CLIENT, 20)])

    assert 18 <= enforcer.authorised()[CLIENT] <= 20


def test_mac_clone_with_other_address_stays_captive(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    lab.client.ip("address", "add", "192.0.2.12/24", "dev", "eth0")
    enforcer.grant([Grant(CLIENT, 60)])

    with serve(lab.upstream, "0.0.0.0", 443, greet(b"tls")):
        assert greeting(lab, 443, source=lab.client_ip) == b"tls"
        assert_refused_at_once(lab, 443, source="192.0.2.12")


def test_authorised_reports_remaining_seconds(enforcer: NftablesEnforcer) -> None:
    enforcer.grant([Grant(CLIENT, 120), Grant(CLIENT6, 30)])

    remaining = enforcer.authorised()

    assert set(remaining) == {CLIENT, CLIENT6}
    assert 118 <= remaining[CLIENT] <= 120
    assert 28 <= remaining[CLIENT6] <= 30


# Counters


def test_counters_grow_with_traffic(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    enforcer.grant([Grant(CLIENT, 60)])
    assert enforcer.counters()[CLIENT].packets == 0

    with (
        serve(lab.upstream, "0.0.0.0", 443, discard),
        lab.connect(443) as connection,
    ):
        connection.sendall(b"x" * 100_000)

    counters = enforcer.counters()[CLIENT]
    assert counters.packets > 2
    assert counters.bytes > 100_000


def test_counter_counts_each_packet_once(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    # A SYN to port 80 passes the negated lookup in prerouting and the
    # lookup in forward. The upstream host replies with a reset, so the
    # client sends exactly one packet.
    enforcer.grant([Grant(CLIENT, 60)])

    with pytest.raises(ConnectionRefusedError):
        namespace_lab.connect(80)

    assert enforcer.counters()[CLIENT].packets == 1


# Revoking


def test_revoke_of_absent_device_succeeds(enforcer: NftablesEnforcer) -> None:
    enforcer.revoke([ABSENT])
    enforcer.revoke([ABSENT, CLIENT6])

    assert enforcer.authorised() == {}


def test_revoke_makes_device_captive(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.grant([Grant(CLIENT, 60), Grant(CLIENT6, 60)])
    enforcer.revoke([CLIENT])

    assert list(enforcer.authorised()) == [CLIENT6]
    assert_refused_at_once(namespace_lab, 443)


def test_revoke_resets_open_upload(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    lab = namespace_lab
    enforcer.grant([Grant(CLIENT, 60)])

    with (
        serve(lab.upstream, "0.0.0.0", 443, discard),
        lab.connect(443) as connection,
    ):
        connection.sendall(b"x" * 10_000)
        enforcer.revoke([CLIENT])
        revoked = time.monotonic()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            while time.monotonic() - revoked < 3:
                connection.sendall(b"x" * 1000)
                time.sleep(0.01)
        assert time.monotonic() - revoked < 1.0


def drain(sock: socket.socket) -> None:
    """Read the datagrams already queued on sock, without waiting for more."""
    sock.setblocking(False)
    for _ in range(10_000):
        try:
            sock.recv(100)
        except BlockingIOError:
            return


def test_revoke_stops_udp_stream_to_device(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    """Replies the device only receives stop once its conntrack entries go."""
    lab = namespace_lab
    enforcer.grant([Grant(CLIENT, 60)])
    with lab.upstream.entered():
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = lab.client_socket(socket.AF_INET, socket.SOCK_DGRAM)
    stop = threading.Event()

    def stream(peer: tuple[str, int]) -> None:
        while not stop.is_set():
            sender.sendto(b"frame", peer)
            time.sleep(0.02)

    with sender, receiver:
        sender.bind((lab.upstream_ip, 5004))
        receiver.settimeout(1.0)
        receiver.sendto(b"subscribe", (lab.upstream_ip, 5004))
        _, peer = sender.recvfrom(100)
        streaming = threading.Thread(target=stream, args=(peer,))
        streaming.start()
        try:
            assert receiver.recv(100) == b"frame"
            enforcer.revoke([CLIENT])
            time.sleep(0.1)
            drain(receiver)
            receiver.settimeout(1.0)
            with pytest.raises(TimeoutError):
                receiver.recv(100)
        finally:
            stop.set()
            streaming.join()


def tracked_connections(lab: NamespaceLab, source: str, port: int) -> list[str]:
    """Return the gateway's conntrack entries from source to port."""
    family = "ipv6" if ":" in source else "ipv4"
    # The listing is filtered here rather than with `conntrack -s`, because
    # Linux 6.18 inverts the kernel's IPv6 address filter.
    output = lab.gateway.run(["conntrack", "-L", "-f", family])
    return [
        line
        for line in output.splitlines()
        if f"src={source} " in line and f"dport={port} " in line
    ]


@pytest.mark.parametrize(
    ("device", "host"),
    [(CLIENT, NamespaceLab.upstream_ip), (CLIENT6, NamespaceLab.upstream_ip6)],
    ids=["ipv4", "ipv6"],
)
def test_revoke_deletes_conntrack_entries(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer, device: Device, host: str
) -> None:
    lab = namespace_lab
    lab.wait_for_ipv6()
    enforcer.grant([Grant(device, 60)])
    listen = "::" if ":" in host else "0.0.0.0"

    with (
        serve(lab.upstream, listen, 443, discard),
        lab.connect(443, host=host) as connection,
    ):
        connection.sendall(b"x")
        assert len(tracked_connections(lab, str(device.ip), 443)) == 1
        enforcer.revoke([device])

        assert tracked_connections(lab, str(device.ip), 443) == []


# The neighbour table


def send_datagram(namespace: Namespace, address: str) -> None:
    """Send one UDP datagram, which makes the sender resolve the address."""
    with namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.sendto(b"", (address, 9))


def neighbour_entry(lab: NamespaceLab, address: str) -> str:
    return lab.gateway.ip("neigh", "show", address, "dev", "lan0")


@pytest.fixture
def neighbours(namespace_lab: NamespaceLab) -> Iterator[NetlinkNeighbours]:
    with namespace_lab.gateway.entered():
        table = NetlinkNeighbours("lan0")
    try:
        yield table
    finally:
        table.close()


def test_neighbours_find_client_mac(
    namespace_lab: NamespaceLab, neighbours: NetlinkNeighbours
) -> None:
    lab = namespace_lab
    send_datagram(lab.client, lab.gateway_lan_ip)
    assert wait_until(lambda: "lladdr" in neighbour_entry(lab, lab.client_ip), 2)

    assert neighbours.lookup(IPv4Address(lab.client_ip)) == lab.client_mac


def test_neighbours_find_ipv6_client_mac(
    namespace_lab: NamespaceLab, neighbours: NetlinkNeighbours
) -> None:
    lab = namespace_lab
    lab.wait_for_ipv6()

    assert neighbours.lookup(IPv6Address(lab.client_ip6)) == lab.client_mac


def test_neighbours_return_none_without_entry(neighbours: NetlinkNeighbours) -> None:
    assert neighbours.lookup(IPv4Address("192.0.2.99")) is None


def test_neighbours_skip_unresolved_entry(
    namespace_lab: NamespaceLab, neighbours: NetlinkNeighbours
) -> None:
    lab = namespace_lab
    # No host has 192.0.2.99, so the gateway's entry stays INCOMPLETE and
    # then turns FAILED.
    send_datagram(lab.gateway, "192.0.2.99")
    assert wait_until(lambda: bool(neighbour_entry(lab, "192.0.2.99")), 2)
    entry = neighbour_entry(lab, "192.0.2.99")

    assert "INCOMPLETE" in entry or "FAILED" in entry
    assert neighbours.lookup(IPv4Address("192.0.2.99")) is None


def test_neighbours_work_inside_event_loop(
    namespace_lab: NamespaceLab, neighbours: NetlinkNeighbours
) -> None:
    lab = namespace_lab
    send_datagram(lab.client, lab.gateway_lan_ip)
    assert wait_until(lambda: "lladdr" in neighbour_entry(lab, lab.client_ip), 2)

    async def lookup() -> str | None:
        return neighbours.lookup(IPv4Address(lab.client_ip))

    assert asyncio.run(lookup()) == lab.client_mac


# Checking the host


def test_check_host_accepts_gateway_and_changes_nothing(
    namespace_lab: NamespaceLab,
) -> None:
    with namespace_lab.gateway.entered():
        check_host(gateway_config())

    items = ruleset(namespace_lab)
    assert [list(item) for item in items] == [["metainfo"]]


UNPRIVILEGED_CHECK = """
from capport.config import parse_config
from capport.errors import ConfigError
from capport.netlink import check_host

config = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}
try:
    check_host(parse_config(config))
except ConfigError as error:
    print(error)
"""


def test_check_host_rejects_process_without_cap_net_admin(
    namespace_lab: NamespaceLab,
) -> None:
    # nobody, with no capabilities, can read interfaces but not nftables.
    unprivileged = [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        "--inh-caps=-all", sys.executable, "-c", UNPRIVILEGED_CHECK,
    ]  # fmt: skip

    output = namespace_lab.gateway.run(unprivileged)

    assert output.startswith("nftables cannot load the gateway's ruleset")
    assert "Operation not permitted" in output
    assert "CAP_NET_ADMIN" in output


def test_check_host_rejects_missing_interface(namespace_lab: NamespaceLab) -> None:
    with namespace_lab.gateway.entered(), pytest.raises(ConfigError) as raised:
        check_host(gateway_config(interface="eth9"))

    message = str(raised.value)
    assert "gateway.interface: no interface named 'eth9'" in message
    assert "`ip link` lists them" in message


def test_check_host_rejects_unassigned_address(namespace_lab: NamespaceLab) -> None:
    with namespace_lab.gateway.entered(), pytest.raises(ConfigError) as raised:
        check_host(gateway_config(address="192.0.2.77"))

    message = str(raised.value)
    assert "portal.address: 192.0.2.77 is not assigned to lan0" in message
    assert "its IPv4 addresses: 192.0.2.1" in message
