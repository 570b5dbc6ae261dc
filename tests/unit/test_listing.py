"""Turning the kernel's dumped set elements into devices, states and usage."""

import math

import pytest

from capport.enforce.base import DeviceUsage, Traffic
from capport.enforce.listing import (
    DeviceUsageMap,
    ElementState,
    authorised_states,
    device_of,
    key_of,
    parse_address,
)
from capport.enforce.nfdump import SetElement
from capport.models import Device

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
V6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")
KEY_A = bytes.fromhex("0200000000110000c000020b")
KEY_V6 = bytes.fromhex("020000000013000020010db8000100000000000000000013")


def test_key_of_ipv4_set_names_mac_and_address() -> None:
    assert device_of(KEY_A) == A


def test_key_of_ipv6_set_names_mac_and_address() -> None:
    assert device_of(KEY_V6) == V6


def test_key_of_unexpected_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="unexpected key 0200 in an authorised set"):
        device_of(bytes.fromhex("0200"))


def test_time_left_is_rounded_down_to_whole_seconds() -> None:
    states = authorised_states([SetElement(KEY_A, 7, 532, 59_999)])

    assert states == {A: ElementState(59.0, 7, 532)}


def test_element_without_timeout_never_expires() -> None:
    states = authorised_states([SetElement(KEY_V6, 0, 0, None)])

    assert states[V6].remaining == math.inf


def test_key_of_device_is_its_set_key() -> None:
    assert key_of(A) == KEY_A
    assert key_of(V6) == KEY_V6


def test_usage_joins_download_counter_by_address() -> None:
    usage = DeviceUsageMap({KEY_A: 532, KEY_V6: 144}, {KEY_A[8:]: 4096}, {})

    assert usage[A] == DeviceUsage(Traffic(532, 4096), {})
    assert usage[V6] == DeviceUsage(Traffic(144, 0), {})


def test_usage_lists_each_authorised_device() -> None:
    usage = DeviceUsageMap({KEY_A: 1, KEY_V6: 2}, {}, {})

    assert set(usage) == {A, V6}
    assert len(usage) == 2
    assert A in usage
    assert Device.parse("02:00:00:00:00:99", "192.0.2.11") not in usage


def test_usage_of_unlisted_device_is_missing() -> None:
    usage = DeviceUsageMap({KEY_A: 1}, {}, {})

    assert usage.get(V6) is None
    with pytest.raises(KeyError):
        usage[V6]


def test_usage_reads_quotas_of_the_device() -> None:
    quotas = {
        "quota-total-020000000011-c000020b": 2048,
        "quota-up-020000000011-c000020b": 1234,
        "quota-up-020000000099-c000020b": 5,
    }

    usage = DeviceUsageMap({KEY_A: 10}, {}, quotas)

    assert usage[A].quota_used == {"total": 2048, "up": 1234}


def test_parse_address_reads_both_versions() -> None:
    assert str(parse_address("192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("2001:DB8::1")) == "2001:db8::1"


def test_parse_address_rejects_invalid_address() -> None:
    with pytest.raises(ValueError, match="invalid address '192.0.2' in an nft"):
        parse_address("192.0.2")


def test_usage_counts_devices_by_version_from_keys() -> None:
    usage = DeviceUsageMap({KEY_A: 1, KEY_V6: 2}, {}, {})

    assert usage.address_versions() == {4: 1, 6: 1}
