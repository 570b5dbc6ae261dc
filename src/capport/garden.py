"""The walled garden: networks and host names every device reaches before login.

Networks go into the kernel as they are. Host names are resolved by the
gateway with the system resolver (getaddrinfo, so /etc/hosts and
nsswitch.conf apply) every `walled_garden.refresh` seconds, and their
addresses are loaded with a timeout of three refresh intervals. An address
that a name stops resolving to therefore leaves the garden within three
intervals, and a resolver that fails once or twice removes nothing.

getaddrinfo does not report DNS TTLs, so the refresh interval, not the
record's TTL, bounds how stale an address can be. A name whose addresses
rotate faster than that (some CDNs) needs its network listed instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from ipaddress import ip_address

from capport.config import WalledGardenSection
from capport.enforce.base import Enforcer
from capport.errors import CapportError
from capport.models import IPAddress

log = logging.getLogger("capport.garden")

# Intervals an address stays in the garden without being resolved again.
KEEP_INTERVALS = 3
RESOLVE_TIMEOUT_SECONDS = 10.0


class WalledGarden:
    """Keeps the kernel's walled-garden sets in step with the configuration."""

    def __init__(self, enforcer: Enforcer, section: WalledGardenSection) -> None:
        self._enforcer = enforcer
        self._section = section
        self._addresses: dict[str, set[IPAddress]] = {}

    async def resolve_once(self) -> None:
        """Resolve every host name and load the garden into the kernel."""
        for host in self._section.hosts:
            try:
                found = await _resolve(host)
            except (OSError, TimeoutError) as error:
                log.warning(
                    "Resolving walled-garden host %s failed; keeping its %d "
                    "known addresses: %s",
                    host,
                    len(self._addresses.get(host, ())),
                    error,
                )
                continue
            if found != self._addresses.get(host):
                log.info(
                    "Walled-garden host %s resolves to %s.",
                    host,
                    ", ".join(sorted(map(str, found))) or "nothing",
                )
            self._addresses[host] = found
        keep = self._section.refresh * KEEP_INTERVALS
        addresses = {a: keep for found in self._addresses.values() for a in found}
        self._enforcer.set_garden(self._section.networks, addresses)

    async def run(self) -> None:
        """Resolve the host names every refresh interval, until cancelled."""
        while True:
            await asyncio.sleep(self._section.refresh)
            try:
                await self.resolve_once()
            except CapportError:
                log.exception("Updating the walled garden failed; retrying.")


async def _resolve(host: str) -> set[IPAddress]:
    loop = asyncio.get_running_loop()
    results = await asyncio.wait_for(
        loop.getaddrinfo(host, None, type=socket.SOCK_STREAM),
        RESOLVE_TIMEOUT_SECONDS,
    )
    # Scoped IPv6 addresses (fe80::1%eth0) are not forwarding targets.
    return {
        ip_address(sockaddr[0])
        for _, _, _, _, sockaddr in results
        if "%" not in str(sockaddr[0])
    }
