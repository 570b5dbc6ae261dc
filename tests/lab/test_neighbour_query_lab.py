"""Neighbour lookups over raw rtnetlink agree with pyroute2's decoding.

The test builds its own namespace with a veth pair and fills the neighbour
table with `ip neigh add`, so every state is set exactly.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from ipaddress import ip_address

import pytest
from netns import Namespace
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from capport.neighbour_query import NeighbourEntry, NeighbourQuery

ENTRIES = [
    ("192.0.2.5", "02:AA:00:00:00:05", "reachable"),
    ("192.0.2.6", "02:aa:00:00:00:06", "stale"),
    ("192.0.2.7", "02:aa:00:00:00:07", "permanent"),
    ("2001:db8::5", "02:aa:00:00:00:15", "reachable"),
    ("2001:db8::6", "02:aa:00:00:00:16", "stale"),
]


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    namespace = Namespace.create("neigh")
    try:
        namespace.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
        for interface in ("v0", "v1"):
            namespace.ip("link", "set", interface, "up")
        namespace.ip("address", "add", "192.0.2.1/24", "dev", "v0")
        namespace.ip("address", "add", "2001:db8::1/64", "dev", "v0", "nodad")
        for address, mac, state in ENTRIES:
            namespace.ip(
                "neigh", "add", address, "lladdr", mac, "dev", "v0", "nud", state
            )
        yield namespace
    finally:
        namespace.delete()


def _pyroute2_entry(ipr: IPRoute, address: str, index: int) -> NeighbourEntry | None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        replies = ipr.neigh("get", dst=address, ifindex=index, family=family)
    except NetlinkError as error:
        if error.code == errno.ENOENT:
            return None
        raise
    reply = replies[0]
    return NeighbourEntry(str(reply.get_attr("NDA_LLADDR")).lower(), reply["state"])


def _query_entry(query: NeighbourQuery, address: str, index: int) -> object:
    try:
        return query.entry(ip_address(address), index)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None
        raise


def test_query_matches_pyroute2(namespace: Namespace) -> None:
    addresses = [address for address, _, _ in ENTRIES] + ["192.0.2.9", "2001:db8::9"]
    with namespace.entered():
        index = socket.if_nametoindex("v0")
        query = NeighbourQuery()
        ipr = IPRoute()
    try:
        found = {address: _query_entry(query, address, index) for address in addresses}
        expected = {
            address: _pyroute2_entry(ipr, address, index) for address in addresses
        }
    finally:
        query.close()
        ipr.close()

    for address in addresses:
        assert found[address] == expected[address], address
    assert found["192.0.2.5"] == NeighbourEntry("02:aa:00:00:00:05", 0x02)
    assert found["192.0.2.9"] is None


def test_query_wrong_interface_fails(namespace: Namespace) -> None:
    with namespace.entered():
        index = socket.if_nametoindex("v1")
        query = NeighbourQuery()
    try:
        with pytest.raises(OSError) as raised:
            query.entry(ip_address("192.0.2.5"), index)
    finally:
        query.close()

    assert raised.value.errno == errno.ENOENT
