"""RADIUS as a sign-in method: credentials in, an Entitlement out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from capport.auth.entitlement import Bandwidth, Entitlement, Method, Quota
from capport.auth.radius.accounting import RadiusAccounting, Usage
from capport.auth.radius.client import Accepted, RadiusClient
from capport.auth.radius.packets import AccessLimits
from capport.config import Config
from capport.enforce.base import DeviceUsage
from capport.errors import ConfigError
from capport.models import Device

log = logging.getLogger("capport.radius")


def usage_from_traffic(
    read_usage: Callable[[], Mapping[Device, DeviceUsage]],
) -> Callable[[], dict[Device, Usage]]:
    """Adapt the firewall's per-device byte counts to accounting usage.

    NOTE: the firewall's download counters count bytes only, so
    Acct-Input-Packets and Acct-Output-Packets are sent as 0.
    """

    def read() -> dict[Device, Usage]:
        return {
            device: Usage(
                input_octets=usage.traffic.up, output_octets=usage.traffic.down
            )
            for device, usage in read_usage().items()
        }

    return read


def entitlement_for(
    username: str, limits: AccessLimits, default_duration: float
) -> Entitlement:
    """Return the Entitlement an Access-Accept with limits grants to username.

    Session-Timeout sets the duration, or default_duration without one. The
    other limits are carried as they are, for the gateway to enforce.
    """
    quota = None
    if limits.max_total_octets is not None:
        quota = Quota(total=limits.max_total_octets)
    bandwidth = None
    if limits.bandwidth_max_up or limits.bandwidth_max_down:
        bandwidth = Bandwidth(limits.bandwidth_max_up, limits.bandwidth_max_down)
    return Entitlement(
        Method.RADIUS,
        limits.session_timeout or default_duration,
        subject=username,
        quota=quota,
        idle_timeout=limits.idle_timeout,
        bandwidth=bandwidth,
    )


class RadiusAuthenticator:
    """Checks a user name and password with RADIUS for the portal's login form."""

    def __init__(
        self, client: RadiusClient, accounting: RadiusAccounting | None = None
    ) -> None:
        self._client = client
        self._accounting = accounting

    async def authenticate(
        self, username: str, password: str, device: Device, default_duration: float
    ) -> Entitlement | None:
        """Return the entitlement the servers grant username at device, or None.

        None means an Access-Reject, or a user name or password too long to
        send. Raises RadiusTimeout when no server replies.
        """
        try:
            result = await self._client.authenticate(username, password, device)
        except ValueError as error:
            log.info("Did not send the login of %s to RADIUS: %s.", device, error)
            return None
        if not isinstance(result, Accepted):
            return None
        if self._accounting is not None:
            self._accounting.expect(device, username, result.limits)
        return entitlement_for(username, result.limits, default_duration)


def interface_mac(interface: str) -> str:
    """Return the MAC address of a network interface, as sysfs reports it."""
    path = Path("/sys/class/net") / interface / "address"
    try:
        return path.read_text().strip()
    except OSError as error:
        raise ConfigError(
            f"gateway.interface: cannot read the MAC address of {interface} "
            f"from {path}: {error.strerror}; set radius.called_station_id"
        ) from error


def build_radius(
    config: Config, read_usage: Callable[[], Mapping[Device, DeviceUsage]]
) -> tuple[RadiusAuthenticator, RadiusAccounting | None]:
    """Build the RADIUS authenticator, and its accounting when enabled.

    The caller registers the accounting as a gateway observer, runs its
    run() task and awaits its close() at shutdown.
    """
    section = config.radius
    if section is None:
        raise ValueError("the configuration has no [radius] section")
    mac = "" if section.called_station_id else interface_mac(config.gateway.interface)
    client = RadiusClient.from_config(section, config.portal.address, mac)
    accounting = None
    if section.accounting:
        accounting = RadiusAccounting(
            client, usage_from_traffic(read_usage), section.interim_interval
        )
    return RadiusAuthenticator(client, accounting), accounting
