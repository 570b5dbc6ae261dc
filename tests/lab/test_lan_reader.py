"""Reading the LAN interface's prefixes from the kernel, in a throwaway namespace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from ipaddress import ip_address, ip_interface

import pytest
from netns import Namespace, remove_stale_namespaces

from capport.errors import ConfigError
from capport.lan import LanReader

pytestmark = pytest.mark.lab


@pytest.fixture
def host() -> Iterator[Namespace]:
    """A namespace whose veth lan0 has two IPv4 prefixes, and IPv6 ones."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    remove_stale_namespaces()
    namespace = Namespace.create("lan")
    try:
        # A veth pair has a carrier, so lan0 gets its link-local address too.
        namespace.ip("link", "add", "lan0", "type", "veth", "peer", "name", "peer0")
        namespace.ip("link", "set", "peer0", "up")
        namespace.ip("address", "add", "192.0.2.1/24", "dev", "lan0")
        namespace.ip("address", "add", "198.51.100.1/25", "dev", "lan0")
        namespace.ip("address", "add", "2001:db8:1::1/64", "dev", "lan0", "nodad")
        namespace.ip("link", "set", "lan0", "up")
        yield namespace
    finally:
        namespace.delete()


def reader_in(namespace: Namespace, interface: str = "lan0") -> LanReader:
    # The reader's worker thread joins the namespace of the thread that made it.
    with namespace.entered():
        return LanReader(interface)


def test_reader_lists_interface_prefixes(host: Namespace) -> None:
    reader = reader_in(host)
    try:
        lan = reader.read()
    finally:
        reader.close()
    assert set(lan.addresses) == {
        ip_interface("192.0.2.1/24"),
        ip_interface("198.51.100.1/25"),
        ip_interface("2001:db8:1::1/64"),
    }


def test_reader_skips_link_local_prefix(host: Namespace) -> None:
    assert "inet6 fe80:" in host.ip("-6", "address", "show", "dev", "lan0")
    reader = reader_in(host)
    try:
        lan = reader.read()
    finally:
        reader.close()
    assert all(not address.is_link_local for address in lan.addresses)


def test_reader_sees_address_added_later(host: Namespace) -> None:
    reader = reader_in(host)
    try:
        with pytest.raises(ValueError, match="outside the LAN"):
            reader.read().check_device_ip(ip_address("203.0.113.9"))
        host.ip("address", "add", "203.0.113.1/24", "dev", "lan0")
        reader.read().check_device_ip(ip_address("203.0.113.9"))
    finally:
        reader.close()


def test_reader_names_missing_interface(host: Namespace) -> None:
    reader = reader_in(host, "lan9")
    try:
        with pytest.raises(ConfigError, match="no interface named 'lan9'"):
            reader.read()
    finally:
        reader.close()
