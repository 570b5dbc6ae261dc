"""The interface to the firewall, and an in-memory one for unit tests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from types import MappingProxyType
from typing import Protocol

from capport.models import Device, IPAddress

IPNetwork = IPv4Network | IPv6Network


def timeout_seconds(timeout: float) -> int:
    """Round a grant's timeout up to whole seconds, as libnftables JSON takes it.

    Rounding up keeps a device online for at least the time it was granted.
    """
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            f"invalid grant timeout {timeout!r}: expected a positive number of seconds"
        )
    return math.ceil(timeout)


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits the kernel enforces on one device besides its timeout.

    Quotas are in bytes at the IP layer, rates in bytes per second. None
    means no limit.
    """

    quota_up: int | None = None
    quota_down: int | None = None
    quota_total: int | None = None
    rate_up: int | None = None
    rate_down: int | None = None


@dataclass(frozen=True, slots=True)
class Traffic:
    """Bytes a device sent (up) and received (down)."""

    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        return self.up + self.down


# The quota_used of a device without quotas: one shared, read-only mapping
# rather than an empty dict per device in every accounting pass.
NO_QUOTAS_USED: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Grant:
    """A device that may forward traffic, for how many more seconds, and its limits.

    used is the traffic already counted against the quotas, carried over when
    the table is rebuilt at start.
    """

    device: Device
    timeout: float
    limits: Limits = Limits()
    used: Traffic = Traffic()


@dataclass(frozen=True, slots=True)
class DeviceUsage:
    """One authorised device's counters as the kernel keeps them.

    traffic counts the bytes forwarded since the device's elements were
    added. quota_used maps "up", "down" and "total" to the bytes its quota
    objects consumed, which includes packets the quota dropped.
    """

    traffic: Traffic
    quota_used: Mapping[str, int] = field(default_factory=lambda: NO_QUOTAS_USED)


class Enforcer(Protocol):
    """Edits the kernel's set of authorised devices.

    Each call is one atomic change to the kernel's sets: it applies whole
    or raises EnforcementError having applied nothing. Deleting a revoked
    device's tracked connections comes after the set change and cannot be
    rolled back with it, so a failure there is logged, not raised.
    """

    def install(self, grants: list[Grant]) -> None:
        """Replace the whole ruleset, authorising exactly grants."""
        ...

    def grant(self, grants: list[Grant]) -> None:
        """Authorise devices, replacing the timeout of any already present."""
        ...

    def revoke(self, devices: list[Device]) -> None:
        """Remove devices from the authorised set and end their connections."""
        ...

    def authorised(self) -> dict[Device, float]:
        """Return the authorised devices with their remaining seconds."""
        ...

    def usage(self) -> Mapping[Device, DeviceUsage]:
        """Return the counters of every authorised device."""
        ...

    def set_mac_lists(self, trusted: Iterable[str], blocked: Iterable[str]) -> None:
        """Replace the trusted and blocked MAC addresses."""
        ...

    def set_garden(
        self, networks: Iterable[IPNetwork], addresses: dict[IPAddress, float]
    ) -> None:
        """Replace the walled garden: networks, and addresses with timeouts."""
        ...

    def uninstall(self) -> None:
        """Remove everything the gateway installed."""
        ...


class MemoryEnforcer:
    """An Enforcer that keeps the set in a dict; timeouts do not run down."""

    def __init__(self) -> None:
        self.devices: dict[Device, float] = {}
        self.limits: dict[Device, Limits] = {}
        self.counters: dict[Device, DeviceUsage] = {}
        self.trusted: set[str] = set()
        self.blocked: set[str] = set()
        self.garden_networks: list[IPNetwork] = []
        self.garden_addresses: dict[IPAddress, float] = {}
        self.installed = False
        self.flushed: list[Device] = []

    def install(self, grants: list[Grant]) -> None:
        self.devices = {}
        self.counters = {}
        self.installed = True
        self._add(grants)

    def grant(self, grants: list[Grant]) -> None:
        self._add(grants)

    def _add(self, grants: list[Grant]) -> None:
        for grant in grants:
            self.devices[grant.device] = grant.timeout
            self.limits[grant.device] = grant.limits
            self.counters[grant.device] = DeviceUsage(Traffic())

    def revoke(self, devices: list[Device]) -> None:
        for device in devices:
            self.devices.pop(device, None)
            self.limits.pop(device, None)
            self.counters.pop(device, None)
            self.flushed.append(device)

    def authorised(self) -> dict[Device, float]:
        return dict(self.devices)

    def usage(self) -> dict[Device, DeviceUsage]:
        return dict(self.counters)

    def set_mac_lists(self, trusted: Iterable[str], blocked: Iterable[str]) -> None:
        self.trusted = set(trusted)
        self.blocked = set(blocked)

    def set_garden(
        self, networks: Iterable[IPNetwork], addresses: dict[IPAddress, float]
    ) -> None:
        self.garden_networks = list(networks)
        self.garden_addresses = dict(addresses)

    def uninstall(self) -> None:
        self.devices.clear()
        self.installed = False
