"""Listen for router advertisements on eth0, optionally after a solicitation.

Run inside a client namespace with `ip netns exec`. Usage:
    ra_listener.py SECONDS [solicit|first]
Prints one JSON object per RA received: source, destination, hop limit,
router lifetime and the Captive-Portal option's URI (or null). With first,
it sends no solicitation and exits after the first RA with that option.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

INTERFACE = "eth0"
ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134
CAPTIVE_PORTAL_OPTION = 37
ICMP6_FILTER = 1


def open_socket(index: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, INTERFACE.encode())
    words = [0xFFFFFFFF] * 8
    words[ROUTER_ADVERTISEMENT >> 5] &= ~(1 << (ROUTER_ADVERTISEMENT & 31))
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("@8I", *words))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    for option in (socket.IPV6_MULTICAST_HOPS, socket.IPV6_UNICAST_HOPS):
        sock.setsockopt(socket.IPPROTO_IPV6, option, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    return sock


def captive_portal_uri(packet: bytes) -> str | None:
    offset = 16
    while offset + 2 <= len(packet):
        kind, units = packet[offset], packet[offset + 1]
        if units == 0:
            return None
        if kind == CAPTIVE_PORTAL_OPTION:
            data = packet[offset + 2 : offset + units * 8]
            return data.rstrip(b"\0").decode()
        offset += units * 8
    return None


def describe(packet: bytes, ancillary: list, sender: tuple) -> dict:
    record: dict = {"source": sender[0].partition("%")[0]}
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
            record["hop_limit"] = struct.unpack("@i", data[:4])[0]
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            record["destination"] = socket.inet_ntop(socket.AF_INET6, data[:16])
    record["code"] = packet[1]
    record["router_lifetime"] = struct.unpack("!H", packet[6:8])[0]
    record["uri"] = captive_portal_uri(packet)
    record["hex"] = packet.hex()
    return record


def main() -> None:
    seconds = float(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else ""
    solicit = mode == "solicit"
    index = socket.if_nametoindex(INTERFACE)
    sock = open_socket(index)
    if solicit:
        packet = bytes([ROUTER_SOLICITATION, 0, 0, 0]) + b"\0" * 4
        sock.sendto(packet, ("ff02::2", 0, 0, index))
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            packet, ancillary, _, sender = sock.recvmsg(1500, 256)
        except TimeoutError:
            break
        record = describe(packet, ancillary, sender)
        print(json.dumps(record), flush=True)
        if mode == "first" and record["uri"] is not None:
            break


if __name__ == "__main__":
    main()
