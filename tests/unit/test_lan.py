"""Which MAC and IP addresses an operator's grant may name."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from capport.lan import Lan, check_device_mac

LAN = Lan.parse("lan0", ["192.0.2.1/24", "2001:db8:1::1/64"])


@pytest.mark.parametrize(
    "mac", ["02:00:00:00:00:11", "00:00:00:00:00:01", "fe:ff:ff:ff:ff:ff"]
)
def test_unicast_mac_is_accepted(mac: str) -> None:
    check_device_mac(mac)


@pytest.mark.parametrize(
    ("mac", "reason"),
    [
        ("ff:ff:ff:ff:ff:ff", "multicast or broadcast"),
        ("01:00:5e:00:00:01", "multicast or broadcast"),
        ("33:33:00:00:00:01", "multicast or broadcast"),
        ("00:00:00:00:00:00", "all zeros"),
    ],
)
def test_non_device_mac_is_rejected(mac: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as raised:
        check_device_mac(mac)
    assert mac in str(raised.value)


@pytest.mark.parametrize(
    "ip", ["192.0.2.2", "192.0.2.11", "192.0.2.254", "2001:db8:1::11"]
)
def test_lan_address_is_accepted(ip: str) -> None:
    LAN.check_device_ip(ip_address(ip))


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("192.0.2.0", "network address of 192.0.2.0/24"),
        ("192.0.2.255", "broadcast address of 192.0.2.0/24"),
        ("192.0.2.1", "the gateway's own address on lan0"),
        ("2001:db8:1::1", "the gateway's own address on lan0"),
        ("2001:db8:1::", "Subnet-Router anycast address of 2001:db8:1::/64"),
        ("127.0.0.1", r"outside the LAN of lan0 \(192.0.2.0/24\)"),
        ("10.0.0.1", r"outside the LAN of lan0 \(192.0.2.0/24\)"),
        ("224.0.0.1", "outside the LAN"),
        ("2001:db8:2::11", r"outside the LAN of lan0 \(2001:db8:1::/64\)"),
        ("fe80::1", "outside the LAN"),
    ],
)
def test_non_device_ip_is_rejected(ip: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as raised:
        LAN.check_device_ip(ip_address(ip))
    assert ip in str(raised.value)


def test_point_to_point_prefix_has_no_reserved_address() -> None:
    lan = Lan.parse("lan0", ["192.0.2.0/31"])
    lan.check_device_ip(ip_address("192.0.2.1"))


def test_second_prefix_is_on_lan() -> None:
    lan = Lan.parse("lan0", ["192.0.2.1/24", "198.51.100.1/25"])
    lan.check_device_ip(ip_address("198.51.100.20"))
    with pytest.raises(ValueError, match="broadcast address of 198.51.100.0/25"):
        lan.check_device_ip(ip_address("198.51.100.127"))


def test_lan_without_ipv6_names_missing_prefix() -> None:
    lan = Lan.parse("lan0", ["192.0.2.1/24"])
    with pytest.raises(ValueError, match="it has no IPv6 prefix"):
        lan.check_device_ip(ip_address("2001:db8:1::11"))
