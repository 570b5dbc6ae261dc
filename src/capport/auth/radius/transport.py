"""Sending one RADIUS request over UDP, with retransmission and failover.

Each request gets a socket of its own, so its source port and identifier
are unique at the server without bookkeeping. A request goes to one server
at a time. After each timeout the same bytes are sent again, so the server
can recognise a duplicate by its identifier and authenticator. When a
server has used up its retries, the request is built again with the next
server's secret and sent there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

from pyrad.packet import Packet, PacketError

from capport.errors import RadiusTimeout

log = logging.getLogger("capport.radius")

Port = Literal["auth", "acct"]

# The largest RADIUS packet (RFC 2865 section 3).
MAX_PACKET_OCTETS = 4096


@dataclass(frozen=True, slots=True)
class RadiusServer:
    """One server: its address, ports and the secret it shares with the gateway."""

    address: IPv4Address | IPv6Address
    auth_port: int = 1812
    acct_port: int = 1813
    secret: bytes = field(default=b"", repr=False)

    def endpoint(self, port: Port) -> tuple[str, int]:
        return str(self.address), self.auth_port if port == "auth" else self.acct_port

    def describe(self, port: Port) -> str:
        host, number = self.endpoint(port)
        if isinstance(self.address, IPv6Address):
            return f"[{host}]:{number}"
        return f"{host}:{number}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait for a reply, and how often to send again."""

    timeout: float = 3.0
    retries: int = 2

    @property
    def attempts(self) -> int:
        return self.retries + 1


async def exchange(
    servers: tuple[RadiusServer, ...],
    port: Port,
    build: Callable[[RadiusServer], Packet],
    policy: RetryPolicy,
) -> tuple[RadiusServer, Packet]:
    """Send build(server)'s packet to each server in turn until one replies.

    Returns the server that replied and its verified reply. Raises
    RadiusTimeout when none did within policy.timeout for each of its
    policy.attempts sends.
    """
    for index, server in enumerate(servers):
        request = build(server)
        reply = await _ask(server, port, request, policy)
        if reply is not None:
            if index > 0:
                log.warning(
                    "RADIUS server %s replied after %d earlier servers did not.",
                    server.describe(port),
                    index,
                )
            return server, reply
        log.warning(
            "RADIUS server %s did not reply to %d sends within %.1f s each.",
            server.describe(port),
            policy.attempts,
            policy.timeout,
        )
    tried = ", ".join(server.describe(port) for server in servers)
    raise RadiusTimeout(
        f"no RADIUS server replied to {policy.attempts} sends each, "
        f"{policy.timeout:g} s apart, at {tried}. Check that radius.servers "
        "are running and list this gateway's address and secret as a client"
    )


async def _ask(
    server: RadiusServer, port: Port, request: Packet, policy: RetryPolicy
) -> Packet | None:
    """Send request to server up to policy.attempts times; return its reply."""
    raw = request.RequestPacket()
    endpoint = server.endpoint(port)
    loop = asyncio.get_running_loop()
    family = (
        socket.AF_INET6 if isinstance(server.address, IPv6Address) else (socket.AF_INET)
    )
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _ReplyProtocol(request, endpoint), family=family
    )
    try:
        for attempt in range(1, policy.attempts + 1):
            transport.sendto(raw, endpoint)
            try:
                return await asyncio.wait_for(
                    asyncio.shield(protocol.reply), policy.timeout
                )
            except TimeoutError:
                log.debug(
                    "No reply from RADIUS server %s to send %d of %d.",
                    server.describe(port),
                    attempt,
                    policy.attempts,
                )
        return None
    finally:
        transport.close()


class _ReplyProtocol(asyncio.DatagramProtocol):
    """Resolves reply with the first datagram that is a valid reply to request.

    Datagrams from another address, undecodable ones and those whose
    Response Authenticator or Message-Authenticator does not verify are
    dropped, as RFC 2865 section 3 requires for a bad authenticator.

    NOTE: a reply without a Message-Authenticator is accepted, because
    FreeRADIUS 3.2.1 (Debian 12) sends none in Access-Accept or -Reject.
    """

    def __init__(self, request: Packet, endpoint: tuple[str, int]) -> None:
        self._request = request
        self._endpoint = endpoint
        self.reply: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.reply.done() or (addr[0], addr[1]) != self._endpoint:
            return
        if len(data) > MAX_PACKET_OCTETS:
            return
        try:
            reply = self._request.CreateReply(packet=data)
        except (PacketError, KeyError, ValueError, IndexError) as error:
            log.warning(
                "Dropped an undecodable RADIUS reply from %s:%s: %s",
                addr[0],
                addr[1],
                error,
            )
            return
        if not self._request.VerifyReply(reply, data):
            log.warning(
                "Dropped a RADIUS reply from %s:%s whose authenticator does not "
                "verify; check the shared secret.",
                addr[0],
                addr[1],
            )
            return
        self.reply.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        # An unconnected UDP socket on Linux reports no ICMP errors, so this
        # is rare; the retry loop treats it like a lost reply.
        log.debug("RADIUS socket error: %s", exc)
