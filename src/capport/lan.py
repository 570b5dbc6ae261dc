"""The gateway's LAN prefixes, and which MAC and IP addresses can be a device's.

A device that signs in on the portal is found in the kernel's neighbour
table, so its addresses are real. An operator's grant through the admin
API names them by hand, and a typo must not put a broadcast MAC, the
gateway's own address or an address off the LAN into the firewall's sets.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import (
    IPv4Interface,
    IPv4Network,
    IPv6Interface,
    IPv6Network,
    ip_interface,
)

from pyroute2 import IPRoute

from capport.errors import ConfigError
from capport.models import IPAddress
from capport.netlink import NetlinkThread

LanInterface = IPv4Interface | IPv6Interface


def check_device_mac(mac: str) -> None:
    """Raise ValueError unless mac, in normalised form, can be a device's.

    The least significant bit of the first octet marks a group address
    (IEEE 802), which covers broadcast and multicast and is never a frame's
    source. All zeros is no device's MAC.
    """
    first_octet = int(mac[:2], 16)
    if first_octet & 0x01:
        raise ValueError(
            f"MAC address {mac} is a multicast or broadcast address, which no "
            "device sends from; give the device's own MAC, such as 02:00:00:00:00:11"
        )
    if mac == "00:00:00:00:00:00":
        raise ValueError(
            f"MAC address {mac} is all zeros, which no device has; give the "
            "device's own MAC, such as 02:00:00:00:00:11"
        )


@dataclass(frozen=True, slots=True)
class Lan:
    """The gateway's addresses on its LAN interface, with their prefixes."""

    interface: str
    addresses: tuple[LanInterface, ...]

    @classmethod
    def parse(cls, interface: str, addresses: list[str]) -> Lan:
        """Build a Lan from addresses such as "192.0.2.1/24"."""
        return cls(interface, tuple(ip_interface(item) for item in addresses))

    def check_device_ip(self, ip: IPAddress) -> None:
        """Raise ValueError unless ip can be a device's address on this LAN.

        It must be inside one of the prefixes and be neither the gateway's
        own address, nor a prefix's network, broadcast or Subnet-Router
        anycast address.
        """
        for own in self.addresses:
            if ip == own.ip:
                raise ValueError(
                    f"{ip} is the gateway's own address on {self.interface}; "
                    "give the address of a device on the LAN"
                )
        containing = [own.network for own in self.addresses if ip in own.network]
        if not containing:
            raise ValueError(
                f"{ip} is outside the LAN of {self.interface} "
                f"({self._prefixes(ip.version)}); give the address of a device "
                "on the LAN"
            )
        for network in containing:
            _check_not_reserved(ip, network)

    def _prefixes(self, version: int) -> str:
        prefixes = [
            str(own.network) for own in self.addresses if own.version == version
        ]
        return ", ".join(prefixes) or f"it has no IPv{version} prefix"


def _check_not_reserved(ip: IPAddress, network: IPv4Network | IPv6Network) -> None:
    # A /31 (RFC 3021) or /32, and an IPv6 /127 (RFC 6164) or /128, has
    # no network or broadcast address: every address is a host's.
    if network.version == 4 and network.prefixlen <= 30:
        if ip == network.network_address:
            raise ValueError(
                f"{ip} is the network address of {network}; give the address "
                "of a device on the LAN"
            )
        if ip == network.broadcast_address:
            raise ValueError(
                f"{ip} is the broadcast address of {network}; give the address "
                "of a device on the LAN"
            )
    # The Subnet-Router anycast address (RFC 4291 section 2.6.1).
    anycast = network.version == 6 and network.prefixlen <= 126
    if anycast and ip == network.network_address:
        raise ValueError(
            f"{ip} is the Subnet-Router anycast address of {network}; give "
            "the address of a device on the LAN"
        )


class LanReader:
    """Reads the LAN interface's addresses from the kernel over rtnetlink.

    Each grant reads them again, so an address added to the interface while
    the gateway runs counts at once.
    """

    def __init__(self, interface: str) -> None:
        self._interface = interface
        self._thread = NetlinkThread("capport-lan")

    def read(self) -> Lan:
        """Read the interface's addresses; raise ConfigError if it is gone."""
        addresses = self._thread.call(_read_addresses, self._interface)
        return Lan(self._interface, addresses)

    def close(self) -> None:
        self._thread.close()


def _read_addresses(interface: str) -> tuple[LanInterface, ...]:
    addresses: list[LanInterface] = []
    with IPRoute() as ipr:
        indices = ipr.link_lookup(ifname=interface)
        if not indices:
            raise ConfigError(
                f"gateway.interface: no interface named {interface!r} on this "
                "host; `ip link` lists them"
            )
        for message in ipr.get_addr(index=indices[0]):
            family = message["family"]
            # On a point-to-point link IFA_ADDRESS is the peer's address.
            local = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            address = ip_interface(f"{local}/{message['prefixlen']}")
            # Link-local IPv6 addresses are never authorised (see
            # netlink.usable_ipv6_entry), so their prefix is no device's.
            if family == socket.AF_INET6 and address.is_link_local:
                continue
            addresses.append(address)
    return tuple(addresses)
