"""Addresses and interfaces of the simulated devices."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from capport.bench.devices import (
    DEVICE_NETWORK,
    MAX_FAKE_DEVICES,
    MAX_LINKED_DEVICES,
    fake_device,
    fake_devices,
    linked_device,
    macvlan_commands,
)


def test_linked_device_addresses() -> None:
    device = linked_device(5)
    assert device.interface == "mv5"
    assert device.mac == "02:b0:00:00:00:05"
    assert device.ip == IPv4Address("198.18.0.21")


def test_linked_devices_stay_below_fake_ones() -> None:
    last = linked_device(MAX_LINKED_DEVICES - 1)
    assert last.ip < fake_device(0).ip


def test_fake_devices_fill_the_network() -> None:
    last = fake_device(MAX_FAKE_DEVICES - 1)
    assert last.ip in DEVICE_NETWORK
    assert last.ip != DEVICE_NETWORK.broadcast_address
    assert MAX_FAKE_DEVICES >= 100_000


def test_fake_device_mac_is_locally_administered() -> None:
    device = fake_device(70_000)
    assert device.mac == "02:fa:00:01:11:70"
    assert int(device.mac[:2], 16) & 0b10


def test_fake_devices_are_distinct() -> None:
    devices = fake_devices(1000)
    assert len({d.mac for d in devices}) == 1000
    assert len({d.ip for d in devices}) == 1000


@pytest.mark.parametrize("index", [-1, MAX_LINKED_DEVICES])
def test_linked_device_index_out_of_range(index: int) -> None:
    with pytest.raises(ValueError, match="invalid device index"):
        linked_device(index)


@pytest.mark.parametrize("index", [-1, MAX_FAKE_DEVICES])
def test_fake_device_index_out_of_range(index: int) -> None:
    with pytest.raises(ValueError, match="invalid fake device index"):
        fake_device(index)


def test_macvlan_commands() -> None:
    devices = [linked_device(0), linked_device(1)]
    lines = macvlan_commands(devices, "eth0", "02:00:00:00:00:01")
    assert lines[:5] == [
        "link add mv0 link eth0 address 02:b0:00:00:00:00 type macvlan mode bridge",
        "address add 198.18.0.16/15 dev mv0",
        "link set mv0 up",
        "route add default via 198.18.0.1 dev mv0 metric 1000",
        "neigh add 198.18.0.1 lladdr 02:00:00:00:00:01 dev mv0 nud permanent",
    ]
    assert lines[8] == "route add default via 198.18.0.1 dev mv1 metric 1001"
