"""The kernel's neighbour table and interfaces, read over rtnetlink with pyroute2.

Also the start-up check of the host: does the LAN interface exist, does it
carry the portal address, and can nftables load the ruleset. The check only
reads and changes nothing on the host.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from capport.config import Config
from capport.errors import ConfigError, EnforcementError
from capport.models import IPAddress
from capport.neighbour_query import NeighbourQuery

log = logging.getLogger("capport.neighbours")

T = TypeVar("T")

# Neighbour states from include/uapi/linux/neighbour.h. An INCOMPLETE entry
# is still being resolved and a FAILED one received no reply, so neither
# contains a usable MAC address.
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
# States in which the kernel has recently confirmed the host, or is doing
# so right now (linux/neighbour.h).
NUD_ACTIVE = NUD_REACHABLE | NUD_DELAY | NUD_PROBE | NUD_NOARP | NUD_PERMANENT


class NetlinkThread:
    """One worker thread that runs pyroute2 calls.

    pyroute2 0.9's synchronous API drives an asyncio loop of its own, and
    fails with RuntimeError in a thread whose loop is already running, as
    the daemon's is. The thread is started here, so it belongs to the
    network namespace of the thread that created this object.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._executor.submit(lambda: None).result()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run function(*args) in the worker thread and return its result."""
        return self._executor.submit(function, *args).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class NetlinkNeighbours:
    """A NeighbourTable that requests one entry from the kernel per lookup.

    Lookups run in the calling thread (see neighbour_query); dumps of the
    whole table go through pyroute2 in a worker thread.
    """

    def __init__(self, interface: str) -> None:
        self._interface = interface
        self._thread = NetlinkThread("capport-neighbours")
        self._ipr: IPRoute = self._thread.call(IPRoute)
        self._query = NeighbourQuery()
        try:
            self._index = self._thread.call(_interface_index, self._ipr, interface)
        except ConfigError:
            self.close()
            raise

    def lookup(self, ip: IPAddress) -> str | None:
        """Return the lower-case MAC of ip in the LAN's neighbour table, or None.

        A request for one address (RTM_GETNEIGH without NLM_F_DUMP) costs the
        same however large the table is, whereas a dump grows with it.
        """
        try:
            return self._get(ip)
        except OSError as error:
            if error.errno != errno.ENOENT:
                log.warning(
                    "Looking up %s in the neighbour table of %s failed: %s",
                    ip,
                    self._interface,
                    error,
                )
            return None

    def is_active(self, ip: IPAddress) -> bool:
        """Tell whether the kernel confirmed the host at ip recently."""
        try:
            entry = self._entry(ip)
        except OSError:
            return False
        return entry is not None and bool(entry[1] & NUD_ACTIVE)

    @property
    def index(self) -> int:
        """The interface index of the LAN interface."""
        return self._index

    def ipv6_neighbours(self) -> dict[str, list[IPv6Address]]:
        """Return the IPv6 addresses of the LAN's usable neighbour entries by MAC.

        NOTE: this dumps the interface's whole IPv6 neighbour table, so its
        cost grows with the number of IPv6 addresses on the LAN.
        """
        try:
            return self._thread.call(self._dump_ipv6)
        except NetlinkError as error:
            log.warning(
                "Listing the IPv6 neighbours of %s failed: %s", self._interface, error
            )
            return {}

    def _dump_ipv6(self) -> dict[str, list[IPv6Address]]:
        found: dict[str, list[IPv6Address]] = {}
        for entry in self._ipr.get_neighbours(
            family=socket.AF_INET6, ifindex=self._index
        ):
            address = usable_ipv6_entry(entry, self._index)
            if address is not None:
                found.setdefault(address[0], []).append(address[1])
        return found

    def _get(self, ip: IPAddress) -> str | None:
        entry = self._entry(ip)
        return None if entry is None else entry[0]

    def _entry(self, ip: IPAddress) -> tuple[str, int] | None:
        entry = self._query.entry(ip, self._index)
        if entry.state & (NUD_INCOMPLETE | NUD_FAILED) or not entry.mac:
            return None
        return entry.mac, entry.state

    def close(self) -> None:
        self._query.close()
        self._thread.call(self._ipr.close)
        self._thread.close()


def usable_ipv6_entry(entry: Any, index: int) -> tuple[str, IPv6Address] | None:
    """Return (MAC, address) of an IPv6 neighbour message on interface index.

    Returns None for another interface or family, for an entry being
    resolved or failed, and for link-local addresses, which cannot be
    forwarded and so need no authorisation.
    """
    if entry["family"] != socket.AF_INET6 or entry["ifindex"] != index:
        return None
    if entry["state"] & (NUD_INCOMPLETE | NUD_FAILED):
        return None
    mac = entry.get_attr("NDA_LLADDR")
    destination = entry.get_attr("NDA_DST")
    if not mac or not destination:
        return None
    address = IPv6Address(destination)
    if address.is_link_local or address.is_multicast:
        return None
    return str(mac).lower(), address


def check_host(config: Config) -> None:
    """Raise ConfigError unless the host can run the gateway as configured.

    The LAN interface must exist and carry portal.address, and the kernel
    must accept the ruleset in a dry run (this needs CAP_NET_ADMIN).
    """
    check_interface(config)
    check_nftables(config)


def check_interface(config: Config) -> None:
    """Raise ConfigError unless gateway.interface exists and has portal.address."""
    thread = NetlinkThread("capport-check")
    try:
        thread.call(_check_interface, config)
    finally:
        thread.close()


def _check_interface(config: Config) -> None:
    interface = config.gateway.interface
    with IPRoute() as ipr:
        index = _interface_index(ipr, interface)
        assigned = [
            IPv4Address(
                message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            )
            for message in ipr.get_addr(index=index, family=socket.AF_INET)
        ]
        assigned6 = [
            IPv6Address(message.get_attr("IFA_ADDRESS"))
            for message in ipr.get_addr(index=index, family=socket.AF_INET6)
        ]
    address6 = config.portal.address6
    if address6 is not None and address6 not in assigned6:
        present = ", ".join(str(address) for address in assigned6) or "none"
        raise ConfigError(
            f"portal.address6: {address6} is not assigned to {interface} (its "
            f"IPv6 addresses: {present}); assign it with `ip address add "
            f"{address6}/64 dev {interface}` or correct the key"
        )
    if config.portal.address not in assigned:
        present = ", ".join(str(address) for address in assigned) or "none"
        raise ConfigError(
            f"portal.address: {config.portal.address} is not assigned to "
            f"{interface} (its IPv4 addresses: {present}); assign it with "
            f"`ip address add {config.portal.address}/<prefix length> dev {interface}` "
            "or correct the key"
        )


def _interface_index(ipr: IPRoute, interface: str) -> int:
    indices = ipr.link_lookup(ifname=interface)
    if not indices:
        raise ConfigError(
            f"gateway.interface: no interface named {interface!r} on this "
            "host; `ip link` lists them"
        )
    return int(indices[0])


def check_nftables(config: Config) -> None:
    """Raise ConfigError unless the kernel accepts the ruleset in a dry run."""
    # Imported here because the enforcer's conntrack part imports this
    # module for NetlinkThread.
    from capport.enforce.nftables import check_ruleset
    from capport.enforce.ruleset import RulesetSpec

    try:
        check_ruleset(RulesetSpec.from_config(config))
    except EnforcementError as error:
        raise ConfigError(
            f"nftables cannot load the gateway's ruleset: {error}. Run as root "
            "(or with CAP_NET_ADMIN) on a kernel with nf_tables"
        ) from error
