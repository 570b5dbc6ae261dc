"""Finding a client's MAC address from the kernel's neighbour table."""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Protocol

from capport.models import IPAddress


class NeighbourTable(Protocol):
    """Maps an IP address on the LAN to the MAC address the kernel holds."""

    def lookup(self, ip: IPAddress) -> str | None:
        """Return the lower-case MAC for ip, or None if the kernel has none."""
        ...

    def is_active(self, ip: IPAddress) -> bool:
        """Tell whether the host at ip was confirmed reachable recently.

        The kernel keeps an entry REACHABLE for about 30 s after the host
        last proved alive (base_reachable_time), then marks it STALE.
        """
        ...

    def ipv6_neighbours(self) -> dict[str, list[IPv6Address]]:
        """Return the IPv6 addresses of the LAN's neighbour entries by MAC."""
        ...


class MemoryNeighbours:
    """A NeighbourTable backed by a dict, for unit tests."""

    def __init__(self, entries: dict[IPAddress, str] | None = None) -> None:
        self.entries: dict[IPAddress, str] = dict(entries or {})
        self.stale: set[IPAddress] = set()

    def lookup(self, ip: IPAddress) -> str | None:
        return self.entries.get(ip)

    def is_active(self, ip: IPAddress) -> bool:
        return ip in self.entries and ip not in self.stale

    def ipv6_neighbours(self) -> dict[str, list[IPv6Address]]:
        found: dict[str, list[IPv6Address]] = {}
        for ip, mac in self.entries.items():
            if isinstance(ip, IPv6Address):
                found.setdefault(mac, []).append(ip)
        return found
