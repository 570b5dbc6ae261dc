"""IPv6 neighbour entries as the kernel adds them, read from rtnetlink.

A device forms new IPv6 addresses while it is online: temporary (privacy)
addresses (RFC 8981) every few hours, and more when it moves between
networks. The gateway authorises them with the device's session as soon as
the kernel resolves them on the LAN. That happens when the gateway first
sends a packet to the address, such as the reset that rejects the device's
first packet from it. The kernel reports each new or changed entry as
RTM_NEWNEIGH to the RTNLGRP_NEIGH multicast group.

The netlink socket is read by the event loop itself (loop.add_reader), so
no thread is needed. pyroute2 only decodes the messages.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from ipaddress import IPv6Address

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from capport.neighbour_query import contains_ipv6_neighbour
from capport.netlink import usable_ipv6_entry

log = logging.getLogger("capport.neighbours")

# RTMGRP_NEIGH from include/uapi/linux/rtnetlink.h: the legacy group bit of
# RTNLGRP_NEIGH, which bind() takes.
RTMGRP_NEIGH = 0x4

# A burst of entries (many devices joining at once) must not overflow the
# socket; the kernel doubles the value and caps it at net.core.rmem_max.
RECEIVE_BUFFER_BYTES = 1 << 20
MAX_READ_BYTES = 1 << 16

NeighbourCallback = Callable[[str, IPv6Address], None]


class NeighbourEvents:
    """Calls on_neighbour(mac, address) for each usable IPv6 entry on one interface.

    on_overflow is called when the kernel dropped messages because the
    socket was full (ENOBUFS), so the caller can read the table again.
    Both callbacks run in the event loop and must not block.
    """

    def __init__(
        self,
        index: int,
        on_neighbour: NeighbourCallback,
        on_overflow: Callable[[], None],
    ) -> None:
        self._index = index
        self._on_neighbour = on_neighbour
        self._on_overflow = on_overflow
        self._marshal = MarshalRtnl()
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Subscribe to neighbour messages in this process's network namespace."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            sock.bind((0, RTMGRP_NEIGH))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._read)
        self._socket = sock
        log.info("Watching IPv6 neighbour entries of interface %d.", self._index)

    def close(self) -> None:
        if self._socket is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None

    def _read(self) -> None:
        sock = self._socket
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(MAX_READ_BYTES)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    log.error("Reading neighbour messages failed: %s", error)
                    return
                log.warning(
                    "The kernel dropped neighbour messages because the socket "
                    "was full; reading the neighbour table again."
                )
                self._on_overflow()
                continue
            self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        if not contains_ipv6_neighbour(data):
            return
        for message in self._marshal.parse(data):
            if message.get("event") != "RTM_NEWNEIGH":
                continue
            entry = usable_ipv6_entry(message, self._index)
            if entry is not None:
                self._on_neighbour(*entry)
