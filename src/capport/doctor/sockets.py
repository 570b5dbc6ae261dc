"""The bound UDP and listening TCP sockets of this namespace, from /proc/net.

The kernel lists each socket with its local address as hexadecimal in host
byte order (little-endian on x86 and ARM) and its port in network byte
order, for example `0100A8C0:0035` for 192.168.0.1:53 (proc_net(5)).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

PROC_NET = Path("/proc/net")
# The state column: 07 is TCP_CLOSE, the state of a bound UDP socket, and
# 0A is TCP_LISTEN (include/net/tcp_states.h).
UDP_BOUND = "07"
TCP_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class BoundSocket:
    address: IPv4Address | IPv6Address
    port: int


def parse_table(text: str, state: str) -> list[BoundSocket]:
    """Return the sockets of a /proc/net/{udp,tcp,udp6,tcp6} table in state."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != state:
            continue
        address_hex, port_hex = fields[1].split(":")
        found.append(BoundSocket(_parse_address(address_hex), int(port_hex, 16)))
    return found


def _parse_address(text: str) -> IPv4Address | IPv6Address:
    raw = bytes.fromhex(text)
    # Each 32-bit word is in host byte order; swap them back word by word.
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    return ip_address(struct.pack(f">{len(words)}I", *words))


def bound(protocol: str, port: int, root: Path = PROC_NET) -> list[BoundSocket]:
    """Return the local sockets of protocol ("udp" or "tcp") bound to port."""
    state = UDP_BOUND if protocol == "udp" else TCP_LISTEN
    sockets = []
    for name in (protocol, protocol + "6"):
        try:
            text = (root / name).read_text()
        except OSError:
            continue
        sockets += [entry for entry in parse_table(text, state) if entry.port == port]
    return sockets


def reaches(entries: list[BoundSocket], address: IPv4Address) -> bool:
    """Tell whether one of the sockets receives traffic sent to address.

    A socket on the wildcard address receives on every address, the IPv6
    wildcard included unless it is IPV6_V6ONLY, which /proc does not show.
    """
    wildcards = {IPv4Address("0.0.0.0"), IPv6Address("::")}
    mapped = IPv6Address(b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(str(address)))
    return any(
        entry.address in wildcards or entry.address in (address, mapped)
        for entry in entries
    )
