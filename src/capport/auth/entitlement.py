"""Entitlements: the session policy an authentication method grants a device.

Every method (click-through, local users, vouchers, RADIUS) ends in one
Entitlement, which the gateway turns into a session. Enforcement of the
optional limits (quotas, idle timeout, bandwidth) belongs to the gateway and
the firewall; a method only states them.
"""

from __future__ import annotations

from dataclasses import dataclass


class Method:
    """The names of the authentication methods, as sessions record them."""

    CLICK_THROUGH = "click-through"
    USER = "user"
    VOUCHER = "voucher"
    RADIUS = "radius"


@dataclass(frozen=True, slots=True)
class Quota:
    """A data allowance in bytes. None means no limit in that direction."""

    up: int | None = None
    down: int | None = None
    total: int | None = None

    def __post_init__(self) -> None:
        for name in ("up", "down", "total"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"invalid {name} quota {value!r}: it must be positive")


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A rate limit in bits per second. None means no limit in that direction."""

    up: int | None = None
    down: int | None = None

    def __post_init__(self) -> None:
        for name in ("up", "down"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(
                    f"invalid {name} bandwidth {value!r}: it must be positive"
                )


@dataclass(frozen=True, slots=True)
class Entitlement:
    """The access one successful authentication grants to one device.

    method names the authentication method ("click-through", "user",
    "voucher"), and subject identifies whom it authenticated within that
    method: a user name or a voucher id, or None for click-through.
    max_devices limits the active sessions of one subject at a time.
    """

    method: str
    duration: float
    subject: str | None = None
    quota: Quota | None = None
    idle_timeout: float | None = None
    bandwidth: Bandwidth | None = None
    max_devices: int | None = None

    def __post_init__(self) -> None:
        if not self.method:
            raise ValueError("the entitlement's method is empty")
        if self.duration <= 0:
            raise ValueError(
                f"invalid session duration {self.duration!r}: it must be positive"
            )
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ValueError(
                f"invalid idle timeout {self.idle_timeout!r}: it must be positive"
            )
        if self.max_devices is not None and self.max_devices < 1:
            raise ValueError(
                f"invalid device limit {self.max_devices!r}: it must be at least 1"
            )
