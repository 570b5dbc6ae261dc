"""One neighbour entry from the kernel, requested over rtnetlink without a thread.

The portal looks up the MAC address of every request's source address.
rtnetlink handles a request synchronously in the sender's context, so the
reply to an RTM_GETNEIGH for one address is queued before send returns.
The event loop can therefore make the request itself. Handing it to
pyroute2's worker thread instead cost a thread switch both ways per
lookup, the largest item in the daemon's profile under many logins.
Measured in a laboratory namespace, a lookup took about 720 us through
the thread and 10 to 20 us here.

The messages are built and parsed here with struct, following
include/uapi/linux/netlink.h, rtnetlink.h and neighbour.h.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from dataclasses import dataclass
from ipaddress import IPv6Address

from capport.models import IPAddress

# Message types and flags (linux/netlink.h, linux/rtnetlink.h).
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWNEIGH = 28
RTM_GETNEIGH = 30
NLM_F_REQUEST = 0x01
# Neighbour attributes (linux/neighbour.h).
NDA_DST = 1
NDA_LLADDR = 2

# struct nlmsghdr: length, type, flags, sequence number, port id.
_HEADER = struct.Struct("=IHHII")
# struct ndmsg: family, two pads, interface index, state, flags, type.
_NDMSG = struct.Struct("=BBHiHBB")
# struct rtattr: length, type.
_ATTRIBUTE = struct.Struct("=HH")
# struct nlmsgerr starts with the negative errno.
_ERROR = struct.Struct("=i")
_RECEIVE_BYTES = 65536
# The kernel replies before send returns, so this only bounds a reply that
# never comes, which would otherwise stall the event loop.
_REPLY_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class NeighbourEntry:
    """A neighbour entry as the kernel returned it.

    mac is lower-case and colon-separated, or empty when the entry has no
    link-layer address yet. state contains the NUD_* bits of linux/neighbour.h.
    """

    mac: str
    state: int


def _align(length: int) -> int:
    """Round length up to the 4-byte alignment of netlink messages and attributes."""
    return (length + 3) & ~3


def build_request(sequence: int, ip: IPAddress, interface_index: int) -> bytes:
    """Return an RTM_GETNEIGH request for ip on one interface."""
    family = socket.AF_INET6 if isinstance(ip, IPv6Address) else socket.AF_INET
    address = ip.packed
    attribute = _ATTRIBUTE.pack(_ATTRIBUTE.size + len(address), NDA_DST) + address
    attribute += b"\0" * (_align(len(attribute)) - len(attribute))
    body = _NDMSG.pack(family, 0, 0, interface_index, 0, 0, 0) + attribute
    header = _HEADER.pack(
        _HEADER.size + len(body), RTM_GETNEIGH, NLM_F_REQUEST, sequence, 0
    )
    return header + body


def parse_reply(data: bytes, sequence: int) -> NeighbourEntry | None:
    """Return the entry in the reply to request sequence, if data contains it.

    Returns None when data contains only messages of other requests.
    Raises OSError with the kernel's errno when it rejected the request
    (ENOENT when the address has no entry).
    """
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, number, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise OSError(errno.EBADMSG, f"truncated netlink message of {length} B")
        payload = data[offset + _HEADER.size : offset + length]
        offset += _align(length)
        if number != sequence:
            continue
        if kind == NLMSG_ERROR:
            (code,) = _ERROR.unpack_from(payload)
            if code == 0:
                continue
            raise OSError(-code, os.strerror(-code))
        if kind == RTM_NEWNEIGH:
            return _parse_neighbour(payload)
        if kind == NLMSG_DONE:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    return None


def contains_ipv6_neighbour(data: bytes) -> bool:
    """Tell whether data contains an RTM_NEWNEIGH message for an IPv6 address.

    Decoding every message with pyroute2 costs far more than reading the
    headers, and most neighbour messages on a LAN are IPv4 (ARP) ones.
    """
    offset = 0
    while offset + _HEADER.size + _NDMSG.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return False
        family = data[offset + _HEADER.size]
        if kind == RTM_NEWNEIGH and family == socket.AF_INET6:
            return True
        offset += _align(length)
    return False


def _parse_neighbour(payload: bytes) -> NeighbourEntry:
    _, _, _, _, state, _, _ = _NDMSG.unpack_from(payload)
    offset = _NDMSG.size
    mac = ""
    while offset + _ATTRIBUTE.size <= len(payload):
        length, kind = _ATTRIBUTE.unpack_from(payload, offset)
        if length < _ATTRIBUTE.size:
            break
        if kind == NDA_LLADDR:
            value = payload[offset + _ATTRIBUTE.size : offset + length]
            mac = ":".join(f"{byte:02x}" for byte in value)
        offset += _align(length)
    return NeighbourEntry(mac, state)


class NeighbourQuery:
    """A netlink socket that requests single neighbour entries from the kernel.

    The socket belongs to the network namespace of the thread that creates
    this object. A lock keeps one request in flight, so a query from
    another thread waits rather than reads the wrong reply.
    """

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            sock.bind((0, 0))
            sock.settimeout(_REPLY_TIMEOUT_SECONDS)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._lock = threading.Lock()
        self._sequence = 0

    def entry(self, ip: IPAddress, interface_index: int) -> NeighbourEntry:
        """Return the entry of ip on the interface.

        Raises OSError: ENOENT when there is none, TimeoutError when the
        kernel sent no reply.
        """
        with self._lock:
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            sequence = self._sequence
            self._socket.sendto(build_request(sequence, ip, interface_index), (0, 0))
            while True:
                entry = parse_reply(self._socket.recv(_RECEIVE_BYTES), sequence)
                if entry is not None:
                    return entry

    def close(self) -> None:
        self._socket.close()
