"""The address a redirected connection was originally sent to.

nftables `redirect` rewrites the destination of a device's port-80 packets
to the responder, and conntrack remembers the original. Linux returns it
from getsockopt(SO_ORIGINAL_DST) on the accepted socket, which is how the
responder learns which site an HTTP/1.0 client without a Host header wanted.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Protocol

from capport.models import IPAddress

# SO_ORIGINAL_DST from linux/netfilter_ipv4.h and IP6T_SO_ORIGINAL_DST from
# linux/netfilter_ipv6/ip6_tables.h; Python's socket module has neither.
SO_ORIGINAL_DST = 80
IP6T_SO_ORIGINAL_DST = 80

_SOCKADDR_IN = struct.Struct("!2xH4s8x")
_SOCKADDR_IN6 = struct.Struct("!2xH4x16s4x")


class SocketLike(Protocol):
    """The part of a transport's socket that asyncio and uvloop expose."""

    def getsockopt(self, level: int, option: int, buflen: int) -> Any: ...


def original_destination(
    sock: SocketLike, local_ip: IPAddress
) -> tuple[IPAddress, int] | None:
    """Return the original (address, port) of a redirected connection.

    local_ip is the socket's own address, which decides whether to ask the
    IPv4 or the IPv6 conntrack table. Returns None when the connection was
    not redirected (conntrack has no entry) or conntrack is not loaded.
    """
    try:
        if isinstance(local_ip, IPv4Address):
            raw = sock.getsockopt(socket.IPPROTO_IP, SO_ORIGINAL_DST, _SOCKADDR_IN.size)
            port, packed = _SOCKADDR_IN.unpack(raw)
            return IPv4Address(packed), port
        raw = sock.getsockopt(
            socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, _SOCKADDR_IN6.size
        )
        port, packed = _SOCKADDR_IN6.unpack(raw)
        return IPv6Address(packed), port
    except (OSError, struct.error):
        return None


def socket_address_ip(address: Any) -> IPAddress:
    """Return the IP of a socket address tuple, as IPv4 when it is v4-mapped.

    A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d, and Python
    adds "%scope" to link-local IPv6 addresses; the firewall and the session
    store know neither form.
    """
    ip = ip_address(str(address[0]).partition("%")[0])
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
