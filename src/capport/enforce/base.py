"""The interface to the firewall, and an in-memory one for unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from capport.models import Device


@dataclass(frozen=True, slots=True)
class Grant:
    """A device that may forward traffic, and for how many more seconds."""

    device: Device
    timeout: float


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

    def uninstall(self) -> None:
        """Remove everything the gateway installed."""
        ...


class MemoryEnforcer:
    """An Enforcer that keeps the set in a dict; timeouts do not run down."""

    def __init__(self) -> None:
        self.devices: dict[Device, float] = {}
        self.installed = False
        self.flushed: list[Device] = []

    def install(self, grants: list[Grant]) -> None:
        self.devices = {grant.device: grant.timeout for grant in grants}
        self.installed = True

    def grant(self, grants: list[Grant]) -> None:
        for grant in grants:
            self.devices[grant.device] = grant.timeout

    def revoke(self, devices: list[Device]) -> None:
        for device in devices:
            self.devices.pop(device, None)
            self.flushed.append(device)

    def authorised(self) -> dict[Device, float]:
        return dict(self.devices)

    def uninstall(self) -> None:
        self.devices.clear()
        self.installed = False
