"""Values shared by the gateway's parts: devices and sessions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

IPAddress = IPv4Address | IPv6Address


def normalise_mac(value: str) -> str:
    """Return value as a lower-case, colon-separated MAC address."""
    mac = value.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ValueError(
            f"invalid MAC address {value!r}: expected six hex pairs such as "
            "02:00:00:00:00:01"
        )
    return mac


@dataclass(frozen=True, slots=True)
class Device:
    """A client as the kernel saw it: its MAC address and one IP address."""

    mac: str
    ip: IPAddress

    @classmethod
    def parse(cls, mac: str, ip: str) -> Device:
        return cls(normalise_mac(mac), ip_address(ip))

    def __str__(self) -> str:
        return f"{self.mac}/{self.ip}"


@dataclass(frozen=True, slots=True)
class Session:
    """One period of access for one device.

    Times are seconds since the Unix epoch, because they must survive a
    restart of the daemon; running timers use the monotonic clock instead.
    subject is the user name or voucher id the session was granted to, or
    None for click-through.
    """

    id: int
    device: Device
    method: str
    started_at: float
    expires_at: float
    ended_at: float | None = None
    end_reason: str | None = None
    subject: str | None = None

    def remaining(self, now: float) -> float:
        """Return the seconds left at wall-clock time now, never negative."""
        return max(0.0, self.expires_at - now)


class Epoch:
    """A number that grows whenever a result read from shared state may change.

    A reader keeps the value it saw with the result, and reads again once
    the value has moved on.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def advance(self) -> None:
        self.value += 1


class EndReason:
    """Why a session ended, as recorded in the store."""

    EXPIRED = "expired"
    REVOKED = "revoked"
    LOGOUT = "logout"
    REPLACED = "replaced"
    DEVICE_LIMIT = "device-limit"
    QUOTA = "quota"
    IDLE = "idle"
    BLOCKED = "blocked"
