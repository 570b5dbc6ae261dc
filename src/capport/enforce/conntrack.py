"""Deleting a device's connection-tracking entries, so its open connections stop.

Once a device leaves the authorised set, the forward chain rejects its own
packets at once. Packets from outside still pass towards it while they
belong to a tracked connection, so a download or a UDP stream that it only
receives would go on. After its entries are deleted, the next packet from outside
starts a new entry, which the forward chain drops. A device that only reads
then sees its connection stall, and one that sends gets a TCP reset.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterable
from ipaddress import IPv6Address, ip_address

from pyroute2 import Conntrack
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

from capport.errors import EnforcementError
from capport.models import IPAddress
from capport.netlink import NetlinkThread

log = logging.getLogger("capport.enforce")


class ConnectionTracker:
    """Deletes conntrack entries over ctnetlink, in this process's namespace."""

    def __init__(self) -> None:
        self._thread = NetlinkThread("capport-conntrack")

    def delete_entries(self, addresses: Iterable[IPAddress]) -> int:
        """Delete every entry whose original source is one of addresses.

        Return how many entries were deleted. Each address costs one dump,
        for which the kernel walks its whole conntrack hash table. That took
        about 4 ms with 262,144 buckets and no entries (Linux 6.18, 2 cores).
        """
        deleted = 0
        for address in dict.fromkeys(addresses):
            try:
                deleted += self._thread.call(_delete_from_source, address)
            except (NetlinkError, OSError) as error:
                raise EnforcementError(
                    f"deleting the conntrack entries of {address} failed: {error}"
                ) from error
        return deleted

    def close(self) -> None:
        self._thread.close()


def _delete_from_source(address: IPAddress) -> int:
    # Matching the original source is enough. A connection whose reply goes
    # to the device was opened by the device, so the device is its original
    # source as well (the gateway does no SNAT towards the LAN). The forward
    # chain drops new connections towards the LAN, so no connection has the
    # device only as its destination.
    if isinstance(address, IPv6Address):
        return _delete_ipv6_from_source(address)
    deleted = 0
    source = NFCTAttrTuple(family=socket.AF_INET, saddr=str(address))
    with Conntrack(nfgen_family=socket.AF_INET) as conntrack:
        # Recent kernels apply the filter to the dump themselves. pyroute2
        # checks each entry against it again, so on older kernels the result
        # is the same and only the dump is longer.
        for entry in list(conntrack.dump_entries(tuple_orig=source)):
            deleted += _delete_entry(conntrack, entry)
    return deleted


def _delete_ipv6_from_source(address: IPv6Address) -> int:
    # Linux 6.18 inverts ctnetlink's IPv6 address filter: a dump filtered on
    # one source returns every entry from other sources. So all IPv6 entries
    # are dumped and matched here.
    deleted = 0
    with Conntrack(nfgen_family=socket.AF_INET6) as conntrack:
        for entry in list(conntrack.dump_entries()):
            if ip_address(entry.tuple_orig.saddr) == address:
                deleted += _delete_entry(conntrack, entry)
    return deleted


def _delete_entry(conntrack: Conntrack, entry: object) -> int:
    try:
        conntrack.delete(entry)
    except NetlinkError as error:
        # The entry ended between the dump and the delete.
        if error.code == errno.ENOENT:
            return 0
        raise
    return 1
