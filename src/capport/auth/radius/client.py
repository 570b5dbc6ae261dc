"""The gateway's RADIUS client: authentication and accounting requests."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from pyrad.packet import AccessChallenge, Packet

from capport.auth.radius.packets import (
    AccessLimits,
    AccountingRecord,
    Authentication,
    NasIdentity,
    access_request,
    accounting_request,
    is_accept,
    read_access_accept,
    reply_message,
    station_id,
)
from capport.auth.radius.transport import RadiusServer, RetryPolicy, exchange
from capport.config import RadiusSection
from capport.models import Device

log = logging.getLogger("capport.radius")

# One octet of CHAP id and sixteen of CHAP-Challenge, the size of a
# Request Authenticator.
CHAP_RANDOM_OCTETS = 17


@dataclass(frozen=True, slots=True)
class Accepted:
    """An Access-Accept and the limits it set."""

    limits: AccessLimits
    server: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An Access-Reject, or a reply capport cannot act on (Access-Challenge)."""

    reply_message: str | None


class RadiusClient:
    """Sends Access-Requests and Accounting-Requests to the configured servers."""

    def __init__(
        self,
        servers: tuple[RadiusServer, ...],
        nas: NasIdentity,
        policy: RetryPolicy,
        authentication: Authentication = "pap",
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if not servers:
            raise ValueError("a RADIUS client needs at least one server")
        self.servers = servers
        self.nas = nas
        self.policy = policy
        self.authentication = authentication
        self._random_bytes = random_bytes

    @classmethod
    def from_config(
        cls, section: RadiusSection, portal_address: IPv4Address, interface_mac: str
    ) -> RadiusClient:
        """Build a client from the [radius] section; interface_mac is the LAN's."""
        servers = tuple(
            RadiusServer(
                address=server.address,
                auth_port=server.auth_port,
                acct_port=server.acct_port,
                secret=server.secret_bytes(),
            )
            for server in section.servers
        )
        nas = NasIdentity(
            identifier=section.nas_identifier,
            ip_address=section.nas_ip_address or portal_address,
            called_station_id=section.called_station_id or station_id(interface_mac),
        )
        policy = RetryPolicy(section.timeout, section.retries)
        return cls(servers, nas, policy, section.authentication)

    async def authenticate(
        self, username: str, password: str, device: Device
    ) -> Accepted | Rejected:
        """Ask the servers whether username may use the network from device.

        Raises ValueError when the user name or password cannot be sent,
        and RadiusTimeout when no server replies.
        """
        challenge = self._random_bytes(CHAP_RANDOM_OCTETS)

        def build(server: RadiusServer) -> Packet:
            return access_request(
                server.secret,
                username,
                password,
                device,
                self.nas,
                self.authentication,
                challenge,
            )

        server, reply = await exchange(self.servers, "auth", build, self.policy)
        where = server.describe("auth")
        if is_accept(reply):
            log.info(
                "RADIUS server %s accepted user %r at %s.", where, username, device
            )
            return Accepted(read_access_accept(reply), where)
        if reply.code == AccessChallenge:
            log.warning(
                "RADIUS server %s sent an Access-Challenge for user %r, which "
                "the login form cannot handle, so it counts as a reject.",
                where,
                username,
            )
        else:
            # Debug only, because anyone on the LAN can cause rejects at will.
            log.debug(
                "RADIUS server %s rejected user %r at %s.", where, username, device
            )
        return Rejected(reply_message(reply))

    async def account(self, record: AccountingRecord) -> str:
        """Send one Accounting-Request; return the server that acknowledged it.

        Raises RadiusTimeout when no server replies.
        """
        server, _ = await exchange(
            self.servers,
            "acct",
            lambda server: accounting_request(server.secret, record, self.nas),
            self.policy,
        )
        where = server.describe("acct")
        log.debug(
            "RADIUS server %s acknowledged accounting %s of session %s.",
            where,
            record.status,
            record.session_id,
        )
        return where
