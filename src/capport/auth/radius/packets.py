"""The RADIUS packets capport sends and what it reads from replies, with no I/O.

Access-Request follows RFC 2865, Accounting-Request RFC 2866, the station
ids RFC 3580 section 3.20 and 3.21, and the attribute numbers are those of
the dictionary files next to this module.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

from pyrad.dictionary import Dictionary
from pyrad.packet import (
    AccessAccept,
    AcctPacket,
    AuthPacket,
    Packet,
)

from capport.models import Device, EndReason

DICTIONARY_PATH = Path(__file__).with_name("dictionary")

Authentication = Literal["pap", "chap"]
AccountingStatus = Literal["Start", "Interim-Update", "Stop"]

# RFC 2865 section 5.2: User-Password carries at most 128 octets.
MAX_PASSWORD_OCTETS = 128
# RFC 2865 section 5: a value of one attribute has at most 253 octets.
MAX_VALUE_OCTETS = 253
# RFC 2869 section 5.16: an interim interval below 60 s should not be used.
MIN_INTERIM_INTERVAL = 60.0

_GIGAWORD = 2**32

# capport's end reasons as Acct-Terminate-Cause names (RFC 2866 section
# 5.10). "idle" is the reason of a session ended for inactivity; any reason
# not listed here is reported as NAS-Request, an end the NAS decided on.
TERMINATE_CAUSES = {
    EndReason.EXPIRED: "Session-Timeout",
    EndReason.REVOKED: "Admin-Reset",
    EndReason.LOGOUT: "User-Request",
    "idle": "Idle-Timeout",
}
DEFAULT_TERMINATE_CAUSE = "NAS-Request"


@functools.cache
def load_dictionary() -> Dictionary:
    """Return the attribute dictionary shipped with capport, parsed once."""
    return Dictionary(str(DICTIONARY_PATH))


@dataclass(frozen=True, slots=True)
class NasIdentity:
    """The gateway's identity in its requests to the RADIUS server."""

    identifier: str
    ip_address: IPv4Address
    called_station_id: str


@dataclass(frozen=True, slots=True)
class AccessLimits:
    """The terms of an Access-Accept for one user; None where none was sent.

    Times are in seconds, bandwidths in bits per second, as WISPr sends
    them, and the data limit is in octets counted in both directions.
    """

    session_timeout: float | None = None
    idle_timeout: float | None = None
    bandwidth_max_up: int | None = None
    bandwidth_max_down: int | None = None
    max_total_octets: int | None = None
    interim_interval: float | None = None
    classes: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    """One Accounting-Request: a session's start, progress or end."""

    status: AccountingStatus
    session_id: str
    username: str
    device: Device
    session_time: int = 0
    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0
    terminate_cause: str | None = None
    classes: tuple[bytes, ...] = ()


def station_id(mac: str) -> str:
    """Format a MAC address as RFC 3580 section 3.21 writes station ids."""
    return mac.replace(":", "-").upper()


def terminate_cause(end_reason: str | None) -> str:
    """Return the Acct-Terminate-Cause name for one of capport's end reasons."""
    return TERMINATE_CAUSES.get(end_reason or "", DEFAULT_TERMINATE_CAUSE)


def split_gigawords(octets: int) -> tuple[int, int]:
    """Split a count into the 32-bit Octets value and its Gigawords (RFC 2869 5.1)."""
    return octets % _GIGAWORD, octets // _GIGAWORD


def chap_response(chap_id: int, password: bytes, challenge: bytes) -> bytes:
    """Return the CHAP-Password value: the id, then MD5(id, password, challenge).

    RFC 1994 section 4.1 defines the response, RFC 2865 section 5.3 the
    attribute. MD5 is what the protocol prescribes here.
    """
    ident = bytes([chap_id])
    return ident + hashlib.md5(ident + password + challenge).digest()


def access_request(
    secret: bytes,
    username: str,
    password: str,
    device: Device,
    nas: NasIdentity,
    authentication: Authentication,
    chap_challenge: bytes,
) -> AuthPacket:
    """Build an Access-Request for username at device.

    chap_challenge is 17 random octets: the first is the CHAP id, the rest
    the CHAP-Challenge. It is unused with PAP. Raises ValueError when the
    user name or password cannot be sent.
    """
    check_credentials(username, password)
    request = AuthPacket(secret=secret, dict=load_dictionary())
    request.authenticator = request.CreateAuthenticator()
    request["User-Name"] = username
    password_octets = password.encode()
    if authentication == "chap":
        challenge = chap_challenge[1:]
        request["CHAP-Challenge"] = challenge
        request["CHAP-Password"] = chap_response(
            chap_challenge[0], password_octets, challenge
        )
    else:
        request["User-Password"] = request.PwCrypt(password_octets)
    request["Service-Type"] = "Login-User"
    _add_station(request, device, nas)
    # A Message-Authenticator in every Access-Request keeps a forged reply
    # from being spliced onto it (BlastRADIUS, CVE-2024-3596).
    request.add_message_authenticator()
    return request


def check_credentials(username: str, password: str) -> None:
    """Raise ValueError when a user name or password does not fit a packet."""
    if not username or len(username.encode()) > MAX_VALUE_OCTETS:
        raise ValueError(
            f"the user name must be 1 to {MAX_VALUE_OCTETS} octets in UTF-8"
        )
    if not password or len(password.encode()) > MAX_PASSWORD_OCTETS:
        raise ValueError(
            f"the password must be 1 to {MAX_PASSWORD_OCTETS} octets in UTF-8"
        )


def accounting_request(
    secret: bytes, record: AccountingRecord, nas: NasIdentity
) -> AcctPacket:
    """Build the Accounting-Request of record."""
    request = AcctPacket(secret=secret, dict=load_dictionary())
    request["Acct-Status-Type"] = record.status
    request["Acct-Session-Id"] = record.session_id
    request["Acct-Authentic"] = "RADIUS"
    request["User-Name"] = record.username
    _add_station(request, record.device, nas)
    for value in record.classes:
        # RFC 2865 section 5.25: each Class of the Access-Accept is sent
        # back unmodified in accounting.
        request.AddAttribute("Class", value)
    if record.status == "Start":
        return request
    _add_usage(request, record)
    if record.status == "Stop":
        request["Acct-Terminate-Cause"] = record.terminate_cause or (
            DEFAULT_TERMINATE_CAUSE
        )
    return request


def read_access_accept(reply: Packet) -> AccessLimits:
    """Read the limits of an Access-Accept into AccessLimits."""
    interim = _positive(reply, "Acct-Interim-Interval")
    return AccessLimits(
        session_timeout=_seconds(_positive(reply, "Session-Timeout")),
        idle_timeout=_seconds(_positive(reply, "Idle-Timeout")),
        bandwidth_max_up=_positive(reply, "WISPr-Bandwidth-Max-Up"),
        bandwidth_max_down=_positive(reply, "WISPr-Bandwidth-Max-Down"),
        max_total_octets=_positive(reply, "ChilliSpot-Max-Total-Octets"),
        interim_interval=(
            None if interim is None else max(float(interim), MIN_INTERIM_INTERVAL)
        ),
        classes=tuple(_octets(value) for value in reply.get("Class", [])),
    )


def reply_message(reply: Packet) -> str | None:
    """Return the Reply-Message of a reply, its parts joined, or None."""
    parts: Sequence[Any] = reply.get("Reply-Message", [])
    text = "".join(str(part) for part in parts).strip()
    return text or None


def is_accept(reply: Packet) -> bool:
    return bool(reply.code == AccessAccept)


# Helpers


def _add_station(request: Packet, device: Device, nas: NasIdentity) -> None:
    request["NAS-Identifier"] = nas.identifier
    request["NAS-IP-Address"] = str(nas.ip_address)
    request["Called-Station-Id"] = nas.called_station_id
    request["Calling-Station-Id"] = station_id(device.mac)
    if isinstance(device.ip, IPv4Address):
        # NOTE: an IPv6 device would need Framed-IPv6-Address (RFC 6911),
        # which this dictionary does not define yet.
        request["Framed-IP-Address"] = str(device.ip)


def _add_usage(request: Packet, record: AccountingRecord) -> None:
    input_octets, input_gigawords = split_gigawords(record.input_octets)
    output_octets, output_gigawords = split_gigawords(record.output_octets)
    request["Acct-Session-Time"] = record.session_time
    request["Acct-Input-Octets"] = input_octets
    request["Acct-Input-Gigawords"] = input_gigawords
    request["Acct-Output-Octets"] = output_octets
    request["Acct-Output-Gigawords"] = output_gigawords
    request["Acct-Input-Packets"] = record.input_packets % _GIGAWORD
    request["Acct-Output-Packets"] = record.output_packets % _GIGAWORD


def _positive(reply: Packet, name: str) -> int | None:
    """Return the first integer value of attribute name, or None if absent or 0."""
    values = reply.get(name, [])
    if not values or not isinstance(values[0], int) or values[0] <= 0:
        return None
    return int(values[0])


def _seconds(value: int | None) -> float | None:
    return None if value is None else float(value)


def _octets(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
