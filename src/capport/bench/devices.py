"""Addresses of the simulated devices the benchmarks use. No I/O.

The laboratory's client network 192.0.2.0/24 has room for 253 hosts, so
the benchmarks give the gateway's LAN a second network, 198.18.0.0/15,
which RFC 2544 reserves for benchmarking. It is split in two:

- offsets 16 to 4095: devices that exist, each a macvlan interface with its
  own MAC address in a client namespace;
- offsets 4096 on: devices that exist only as firewall elements or store
  rows, to fill the sets (up to 126,974 of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from capport.models import Device

DEVICE_NETWORK = IPv4Network("198.18.0.0/15")
DEVICE_GATEWAY = DEVICE_NETWORK.network_address + 1
# A device's default route gets this metric plus its index, because routes
# to one destination in one table must differ in their metric.
ROUTE_METRIC_BASE = 1000

_FIRST_LINKED = 16
_FIRST_FAKE = 4096
MAX_LINKED_DEVICES = _FIRST_FAKE - _FIRST_LINKED
MAX_FAKE_DEVICES = DEVICE_NETWORK.num_addresses - _FIRST_FAKE - 1


@dataclass(frozen=True, slots=True)
class LinkedDevice:
    """A simulated device with an interface of its own in a client namespace."""

    index: int
    interface: str
    mac: str
    ip: IPv4Address

    def to_json(self) -> dict[str, str]:
        return {"interface": self.interface, "mac": self.mac, "ip": str(self.ip)}


def linked_device(index: int) -> LinkedDevice:
    """Return the simulated device number index (0 to MAX_LINKED_DEVICES - 1)."""
    if not 0 <= index < MAX_LINKED_DEVICES:
        raise ValueError(
            f"invalid device index {index}: expected 0 to {MAX_LINKED_DEVICES - 1}"
        )
    return LinkedDevice(
        index=index,
        interface=f"mv{index}",
        mac=_mac(0xB0, index),
        ip=DEVICE_NETWORK.network_address + _FIRST_LINKED + index,
    )


def fake_device(index: int) -> Device:
    """Return the firewall-only device number index (0 to MAX_FAKE_DEVICES - 1)."""
    if not 0 <= index < MAX_FAKE_DEVICES:
        raise ValueError(
            f"invalid fake device index {index}: expected 0 to {MAX_FAKE_DEVICES - 1}"
        )
    ip = DEVICE_NETWORK.network_address + _FIRST_FAKE + index
    return Device(_mac(0xFA, index), ip)


def fake_devices(count: int) -> list[Device]:
    return [fake_device(index) for index in range(count)]


def macvlan_commands(
    devices: list[LinkedDevice], parent: str, gateway_mac: str
) -> list[str]:
    """Return `ip -batch` lines that create devices on top of parent.

    Each device gets the whole /15 as its on-link network and a default
    route through the gateway. A socket bound to the interface
    (SO_BINDTODEVICE) then uses that route and the interface's MAC address.

    The gateway's MAC is entered as a permanent neighbour of each device.
    Linux keeps one IPv4 neighbour table for all network namespaces and
    refuses new dynamic entries beyond gc_thresh3 (1,024 by default) when
    none can be evicted. A permanent entry does not count towards that
    limit, so only the gateway's entries for the devices do.
    """
    prefix = DEVICE_NETWORK.prefixlen
    lines = []
    for device in devices:
        name = device.interface
        lines += [
            f"link add {name} link {parent} address {device.mac} type macvlan "
            "mode bridge",
            f"address add {device.ip}/{prefix} dev {name}",
            f"link set {name} up",
            f"route add default via {DEVICE_GATEWAY} dev {name} "
            f"metric {ROUTE_METRIC_BASE + device.index}",
            f"neigh add {DEVICE_GATEWAY} lladdr {gateway_mac} dev {name} nud permanent",
        ]
    return lines


def _mac(kind: int, index: int) -> str:
    # A locally administered unicast MAC (02 first): the kind byte, then
    # the index in the last 32 bits.
    octets = [0x02, kind, *index.to_bytes(4, "big")]
    return ":".join(f"{octet:02x}" for octet in octets)
