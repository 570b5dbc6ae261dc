"""Router advertisements that carry the Captive-Portal option (RFC 8910 section 2.3).

Debian 12's dnsmasq 2.90 and radvd 2.19 cannot send RA option 37, so the
daemon sends its own router advertisements on the LAN interface: to
ff02::1 at most ra_interval seconds apart, and in reply to each Router
Solicitation.
They carry the option and no other, and leave every other setting of the
hosts (hop limit, reachable time, retransmission timer) unspecified.

The packet builder and the timing are pure. RouterAdvertiser owns a raw
ICMPv6 socket, for which the kernel computes the checksum (RFC 3542
section 3.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

from capport.config import Config
from capport.errors import ConfigError
from capport.provisioning import DNSMASQ_ROUTER_LIFETIME, MAX_URI_BYTES, api_uri

log = logging.getLogger("capport.provisioning")

ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134
CAPTIVE_PORTAL_OPTION = 37

ALL_NODES = "ff02::1"
ALL_ROUTERS = "ff02::2"
# Hosts drop neighbour discovery messages with any other hop limit, because
# only a message from the link itself arrives with 255 (RFC 4861 section 6.1).
ND_HOP_LIMIT = 255

# RFC 4861 section 10: the first advertisements come at most 16 s apart,
# and multicast replies to solicitations at least 3 s apart.
INITIAL_ADVERTISEMENTS = 3
MAX_INITIAL_INTERVAL = 16.0
MIN_DELAY_BETWEEN_RAS = 3.0
# MinRtrAdvInterval defaults to 0.33 * MaxRtrAdvInterval (section 6.2.1).
MIN_INTERVAL_RATIO = 0.33

_OTHER_CONFIG_FLAG = 0x40
# struct icmp6_filter of <netinet/icmp6.h>: a set bit blocks that type.
ICMP6_FILTER = 1
_LINK_SCOPE = 0x20
_IF_INET6 = Path("/proc/net/if_inet6")

# A new link-local address stays tentative while duplicate address
# detection runs (1 s with Linux's defaults, RFC 4862 section 5.4), and
# binding to it fails with EADDRNOTAVAIL until then. A gateway started with
# its interface waits this long for the address.
TENTATIVE_WAIT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class AdvertisementSettings:
    """The content and interval of the daemon's router advertisements."""

    interface: str
    uri: str
    interval: float
    router_lifetime: int
    other_config: bool


def settings_from_config(config: Config) -> AdvertisementSettings | None:
    """Return the advertisement settings, or None when RA option 37 is off.

    provisioning.ra_captive_portal unset means on when portal.address6 is
    set, because then the LAN is meant to carry IPv6. Raises ConfigError when
    the API URI is invalid or longer than MAX_URI_BYTES.
    """
    section = config.provisioning
    enabled = section.ra_captive_portal
    if enabled is None:
        enabled = config.portal.address6 is not None
    if not enabled:
        return None
    # With provisioning.prefix6, dnsmasq advertises this same link-local
    # address as a default router. A host removes a default router at once
    # when an RA from it has lifetime 0 (RFC 4861 section 6.3.4), so these
    # RAs repeat dnsmasq's lifetime and O flag instead. Without prefix6 the
    # lifetime is 0, so hosts do not make the gateway a default router.
    dnsmasq_sends_ras = section.prefix6 is not None
    return AdvertisementSettings(
        interface=config.gateway.interface,
        uri=api_uri(config),
        interval=section.ra_interval,
        router_lifetime=DNSMASQ_ROUTER_LIFETIME if dnsmasq_sends_ras else 0,
        other_config=dnsmasq_sends_ras,
    )


# Packets


def captive_portal_option(uri: str) -> bytes:
    """Encode the Captive-Portal option: type 37, length in 8-octet units, URI.

    The URI is padded with NUL bytes to the next 8-octet boundary (RFC 8910
    section 2.3). Raises ConfigError when it is longer than MAX_URI_BYTES.
    """
    data = uri.encode("utf-8")
    if len(data) > MAX_URI_BYTES:
        raise ConfigError(
            f"the Captive Portal API URI is {len(data)} bytes long, but RFC "
            f"8910 allows at most {MAX_URI_BYTES}; use a shorter host name or path"
        )
    units = (2 + len(data) + 7) // 8
    padding = units * 8 - 2 - len(data)
    return bytes([CAPTIVE_PORTAL_OPTION, units]) + data + b"\0" * padding


def router_advertisement(
    uri: str, router_lifetime: int = 0, other_config: bool = False
) -> bytes:
    """Build an ICMPv6 Router Advertisement carrying only the Captive-Portal option.

    The checksum is left 0 for the kernel to fill in. Hosts process the
    options of every valid RA, whatever its router lifetime (RFC 4861
    section 6.3.4), so lifetime 0 still delivers the URI. Cur Hop Limit,
    Reachable Time and Retrans Timer are 0, which means unspecified.
    """
    if not 0 <= router_lifetime <= 9000:
        # AdvDefaultLifetime is at most 9000 s (RFC 4861 section 6.2.1).
        raise ValueError(f"router lifetime {router_lifetime} is outside 0 to 9000 s")
    flags = _OTHER_CONFIG_FLAG if other_config else 0
    header = struct.pack(
        "!BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, 0, flags, router_lifetime, 0, 0
    )
    return header + captive_portal_option(uri)


def is_router_solicitation(packet: bytes, hop_limit: int | None) -> bool:
    """Return whether packet is a valid Router Solicitation (RFC 4861 section 6.1.1)."""
    return (
        hop_limit == ND_HOP_LIMIT
        and len(packet) >= 8
        and packet[0] == ROUTER_SOLICITATION
        and packet[1] == 0
    )


def advertisement_delays(interval: float, rng: random.Random) -> list[float]:
    """Return the delays before the first advertisements (RFC 4861 section 6.2.4)."""
    first = min(interval, MAX_INITIAL_INTERVAL)
    return [rng.uniform(0.0, 1.0)] + [
        rng.uniform(MIN_INTERVAL_RATIO * first, first)
        for _ in range(INITIAL_ADVERTISEMENTS - 1)
    ]


def next_delay(interval: float, rng: random.Random) -> float:
    """Return a delay between MinRtrAdvInterval and MaxRtrAdvInterval."""
    return rng.uniform(MIN_INTERVAL_RATIO * interval, interval)


def parse_link_local(table: str, interface: str) -> IPv6Address | None:
    """Return interface's link-local address from /proc/net/if_inet6 text."""
    for line in table.splitlines():
        fields = line.split()
        if len(fields) != 6 or fields[5] != interface:
            continue
        if int(fields[3], 16) == _LINK_SCOPE:
            return IPv6Address(bytes.fromhex(fields[0]))
    return None


# Sockets


def open_socket(interface: str) -> tuple[socket.socket, IPv6Address, int]:
    """Open the raw ICMPv6 socket of interface; return it, its source and index.

    Raises ConfigError when the interface does not exist or has no
    link-local address, because then it cannot send neighbour discovery.
    """
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        raise ConfigError(
            f"gateway.interface {interface!r} does not exist; it is needed for "
            "the Captive-Portal RA option (set provisioning.ra_captive_portal = "
            "false to send none)"
        ) from None
    source = parse_link_local(_IF_INET6.read_text(), interface)
    if source is None:
        raise ConfigError(
            f"gateway.interface {interface} has no IPv6 link-local address, "
            "which router advertisements need as their source; enable IPv6 on "
            "it or set provisioning.ra_captive_portal = false"
        )
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        _configure(sock, interface, index)
        _bind_when_ready(sock, source, index)
    except OSError:
        sock.close()
        raise
    return sock, source, index


def _bind_when_ready(sock: socket.socket, source: IPv6Address, index: int) -> None:
    deadline = time.monotonic() + TENTATIVE_WAIT_SECONDS
    while True:
        try:
            sock.bind((str(source), 0, 0, index))
            return
        except OSError as error:
            if error.errno != errno.EADDRNOTAVAIL or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _configure(sock: socket.socket, interface: str, index: int) -> None:
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    for option in (socket.IPV6_MULTICAST_HOPS, socket.IPV6_UNICAST_HOPS):
        sock.setsockopt(socket.IPPROTO_IPV6, option, ND_HOP_LIMIT)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    # The gateway itself has no use for its own advertisements.
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _solicitations_only())
    # Solicitations go to all-routers, which a forwarding interface has
    # joined already; joining again only adds a reference.
    group = socket.inet_pton(socket.AF_INET6, ALL_ROUTERS) + struct.pack("@I", index)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)


def _solicitations_only() -> bytes:
    words = [0xFFFFFFFF] * 8
    words[ROUTER_SOLICITATION >> 5] &= ~(1 << (ROUTER_SOLICITATION & 31))
    return struct.pack("@8I", *words)


def _hop_limit(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
            (value,) = struct.unpack("@i", data[:4])
            return int(value)
    return None


class RouterAdvertiser:
    """Sends the Captive-Portal RA periodically and in reply to solicitations."""

    def __init__(
        self,
        settings: AdvertisementSettings,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._packet = router_advertisement(
            settings.uri, settings.router_lifetime, settings.other_config
        )
        self._rng = rng or random.Random()
        self._clock = clock
        self._last_multicast = -MIN_DELAY_BETWEEN_RAS
        self._sock: socket.socket | None = None
        self._index = 0

    def open(self) -> None:
        """Open the socket; raises ConfigError or OSError when that fails."""
        self._sock, source, self._index = open_socket(self._settings.interface)
        log.info(
            "Sending the Captive-Portal RA option from %s on %s, at most %.0f s apart.",
            source,
            self._settings.interface,
            self._settings.interval,
        )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            log.info("Stopped sending router advertisements.")

    async def run(self) -> None:
        """Send advertisements until cancelled, and reply to solicitations meanwhile."""
        if self._sock is None:
            self.open()
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._read_solicitations)
        try:
            for delay in advertisement_delays(self._settings.interval, self._rng):
                await asyncio.sleep(delay)
                self._send_multicast()
            while True:
                await asyncio.sleep(next_delay(self._settings.interval, self._rng))
                self._send_multicast()
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self._sock.fileno())

    def _send_multicast(self) -> None:
        self._last_multicast = self._clock()
        self._send(ALL_NODES)

    def _send(self, destination: str) -> None:
        assert self._sock is not None
        try:
            self._sock.sendto(self._packet, (destination, 0, 0, self._index))
        except OSError as error:
            # A link that is down or a full queue loses one advertisement;
            # the next one is due within ra_interval.
            log.warning(
                "Sending a router advertisement to %s on %s failed: %s",
                destination,
                self._settings.interface,
                error,
            )

    def _read_solicitations(self) -> None:
        assert self._sock is not None
        while True:
            try:
                packet, ancillary, _, sender = self._sock.recvmsg(
                    1500, socket.CMSG_SPACE(4)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                log.warning("Reading a router solicitation failed: %s", error)
                return
            if is_router_solicitation(packet, _hop_limit(ancillary)):
                self._reply(IPv6Address(sender[0].partition("%")[0]))

    def _reply(self, source: IPv6Address) -> None:
        # RFC 4861 section 6.2.6: a solicitation from the unspecified address
        # gets a multicast reply, at most one every MIN_DELAY_BETWEEN_RAS.
        # Others may get a unicast reply.
        if not source.is_unspecified:
            log.debug("Replying to a router solicitation from %s.", source)
            self._send(str(source))
            return
        if self._clock() - self._last_multicast >= MIN_DELAY_BETWEEN_RAS:
            self._send_multicast()
