"""The TOML configuration file: its schema, defaults and validation.

Loading is pure: it reads one file and returns a frozen Config or raises
ConfigError naming the key and the problem. Checks against the host (does the
interface exist, is the address assigned) live in capport.netlink.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from capport.errors import ConfigError
from capport.models import normalise_mac
from capport.probes import ProbeEntry

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Convert 90, 90.5, "90s", "15m", "1h" or "2d" to seconds."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 3600, "15m" or "1h"')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(
            f"invalid duration {value!r}: expected seconds or a number "
            'followed by s, m, h or d, such as "15m"'
        )
    if seconds <= 0:
        raise ValueError(f"invalid duration {value!r}: it must be positive")
    return seconds


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB|KiB|kiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "kB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "kiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMG]?)bit(?:/s)?\s*$")
_RATE_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


def parse_size(value: Any) -> int:
    """Convert 1000000, "1MB", "500kB" or "2GiB" to bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    else:
        raise ValueError(
            f"invalid size {value!r}: expected bytes or a number followed by "
            'kB, MB, GB, KiB, MiB or GiB, such as "500MB"'
        )
    if size <= 0:
        raise ValueError(f"invalid size {value!r}: it must be positive")
    return size


def parse_rate(value: Any) -> int:
    """Convert 1000000, "1Mbit", "512kbit" or "2Gbit/s" to bits per second."""
    if isinstance(value, int) and not isinstance(value, bool):
        rate = value
    elif isinstance(value, str) and (match := _RATE.match(value)):
        rate = int(float(match.group(1)) * _RATE_UNITS[match.group(2)])
    else:
        raise ValueError(
            f"invalid rate {value!r}: expected bits per second or a number "
            'followed by kbit, Mbit or Gbit, such as "10Mbit"'
        )
    if rate < 8:
        raise ValueError(f"invalid rate {value!r}: it must be at least 8 bit/s")
    return rate


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Rate = Annotated[int, BeforeValidator(parse_rate)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GatewaySection(_Section):
    interface: str = Field(min_length=1, max_length=15)


class PortalSection(_Section):
    address: ipaddress.IPv4Address
    address6: ipaddress.IPv6Address | None = None
    port: Port = 80
    url: str | None = None
    title: str = "Guest network"
    terms: str = (
        "Use this network lawfully and considerately. Access may be "
        "logged and ended at any time."
    )
    terms_file: Path | None = None
    max_connections: int = Field(default=1024, ge=1)
    max_connections_per_client: int = Field(default=32, ge=1)
    request_timeout: Duration = 10.0

    @field_validator("address", mode="before")
    @classmethod
    def _parse_address(cls, value: Any) -> ipaddress.IPv4Address:
        if not isinstance(value, str):
            raise ValueError("expected an IPv4 address as a string")
        return ipaddress.IPv4Address(value)

    @field_validator("address6", mode="before")
    @classmethod
    def _parse_address6(cls, value: Any) -> ipaddress.IPv6Address:
        if not isinstance(value, str):
            raise ValueError("expected an IPv6 address as a string")
        address = ipaddress.IPv6Address(value)
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise ValueError(
                f"{value} is not a unicast address that devices can route to; "
                "use the LAN interface's global or unique local IPv6 address"
            )
        return address

    @field_validator("terms_file", mode="before")
    @classmethod
    def _parse_path(cls, value: Any) -> Path:
        if not isinstance(value, str):
            raise ValueError("expected a file path as a string")
        return Path(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+/?", value):
            raise ValueError(f"invalid URL {value!r}: expected http:// or https://")
        return value

    def base_url(self) -> str:
        """Return the portal's URL, ending in a slash."""
        if self.url:
            return self.url.rstrip("/") + "/"
        return self._address_url(str(self.address))

    def base_url6(self) -> str:
        """Return the portal's URL for devices that connect over IPv6.

        Without portal.url, it names portal.address6, so that a device
        without IPv4 can follow the link; without either, it is base_url().
        """
        if self.url or self.address6 is None:
            return self.base_url()
        return self._address_url(f"[{self.address6}]")

    def _address_url(self, host: str) -> str:
        if self.port == 80:
            return f"http://{host}/"
        return f"http://{host}:{self.port}/"


class ResponderSection(_Section):
    port: Port = 8511
    max_connections: int = Field(default=4096, ge=1)
    max_connections_per_client: int = Field(default=64, ge=1)
    max_header_bytes: int = Field(default=16384, ge=1024)
    max_target_bytes: int = Field(default=8192, ge=256)
    max_body_bytes: int = Field(default=65536, ge=0)
    header_timeout: Duration = 10.0
    keepalive_timeout: Duration = 5.0


# nftables element timeouts overflow somewhere between 200,000 and 1,000,000
# days on Linux 6.x; a year keeps every grant well inside that.
MAX_SESSION_DAYS = 365
MAX_SESSION_SECONDS = MAX_SESSION_DAYS * 86400

# The terms are sent with every splash page, so a file this large is a
# mistake rather than terms a person would read.
MAX_TERMS_BYTES = 1024 * 1024


def check_session_length(seconds: float, given: str | None = None) -> float:
    """Return seconds, or raise ValueError if a session may not last that long.

    The message names given, the operator's own spelling such as "9000h",
    or else the seconds, followed by the days they make.
    """
    if seconds <= MAX_SESSION_SECONDS:
        return seconds
    shown = f"{seconds:.0f} s" if given is None else given.strip()
    if not shown.endswith("d"):
        shown = f"{shown} ({format_days(seconds)})"
    raise ValueError(
        f"duration {shown} is longer than the maximum of {MAX_SESSION_DAYS} days "
        f"({MAX_SESSION_SECONDS} s)"
    )


def format_days(seconds: float) -> str:
    """Format seconds as days with at most two decimals, such as "365.01 days"."""
    days = f"{seconds / 86400:.2f}".rstrip("0").rstrip(".")
    return f"{days} day" if days == "1" else f"{days} days"


class SessionSection(_Section):
    duration: Duration = 3600.0
    token_lifetime: Duration = 900.0
    idle_timeout: Duration | None = None
    quota_up: Size | None = None
    quota_down: Size | None = None
    quota_total: Size | None = None
    bandwidth_up: Rate | None = None
    bandwidth_down: Rate | None = None
    accounting_interval: Duration = 30.0

    @field_validator("duration")
    @classmethod
    def _check_duration(cls, value: float) -> float:
        return check_session_length(value)


def _mac_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(
            'expected a list of MAC addresses, such as ["02:00:00:00:00:01"]'
        )
    return tuple(
        normalise_mac(item) if isinstance(item, str) else item for item in value
    )


class AccessSection(_Section):
    trusted_macs: Annotated[tuple[str, ...], BeforeValidator(_mac_list)] = ()
    blocked_macs: Annotated[tuple[str, ...], BeforeValidator(_mac_list)] = ()


class WalledGardenSection(_Section):
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: tuple[str, ...] = ()
    refresh: Duration = 300.0

    @field_validator("networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError('expected a list of networks, such as ["192.0.2.0/24"]')
        networks = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"invalid network {item!r}: expected a string")
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as error:
                raise ValueError(f"invalid network {item!r}: {error}") from None
        return tuple(networks)

    @field_validator("hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError('expected a list of host names, such as ["example.org"]')
        for item in value:
            if not isinstance(item, str) or not _HOST_NAME.match(item):
                raise ValueError(
                    f"invalid host name {item!r}: expected a name such as "
                    "login.example.org"
                )
        return tuple(item.lower().rstrip(".") for item in value)


_HOST_NAME = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class StoreSection(_Section):
    path: Path = Path("/var/lib/capport/capport.db")
    synchronous: Literal["full", "normal"] = "full"
    # How long accounting records of ended sessions are kept.
    retention: Duration = 90 * 86400.0

    @field_validator("path", mode="before")
    @classmethod
    def _parse_path(cls, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a file path as a string")
        return Path(value)


class ControlSection(_Section):
    socket: Path = Path("/run/capport/control.sock")

    @field_validator("socket", mode="before")
    @classmethod
    def _parse_path(cls, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a file path as a string")
        return Path(value)


class AdminSection(_Section):
    """The operator's HTTP API with bearer tokens, and its Prometheus metrics."""

    enabled: bool = True
    address: ipaddress.IPv4Address = ipaddress.IPv4Address("127.0.0.1")
    port: Port = 8512
    # False lets a Prometheus server scrape /metrics without a token.
    metrics_require_token: bool = True
    # How long the per-minute samples behind /api/v1/history are kept.
    history_retention: Duration = 30 * 86400.0
    # Origins, besides the listener's own, from which browsers may change
    # state: those of a TLS proxy in front of the listener.
    origins: tuple[str, ...] = ()

    @field_validator("address", mode="before")
    @classmethod
    def _parse_address(cls, value: Any) -> ipaddress.IPv4Address:
        if isinstance(value, ipaddress.IPv4Address):
            return value
        if not isinstance(value, str):
            raise ValueError("expected an IPv4 address as a string")
        return ipaddress.IPv4Address(value)

    @field_validator("origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ValueError(
                'expected a list of origins, such as ["https://gw.example.net"]'
            )
        return tuple(normalise_origin(item) for item in value)


def normalise_origin(value: Any) -> str:
    """Return value as browsers send it in the Origin header.

    That is scheme://host[:port] in lower case, without the scheme's default
    port and without a path: the ASCII serialization of RFC 6454.
    """
    example = 'such as "https://gw.example.net" or "https://gw.example.net:8443"'
    if not isinstance(value, str):
        raise ValueError(f"invalid origin {value!r}: expected a string {example}")
    try:
        parts = urllib.parse.urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid origin {value!r}: expected one {example}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    extra = parts.path not in ("", "/") or parts.query or parts.fragment
    if scheme not in ("http", "https") or not host or extra or parts.username:
        raise ValueError(
            f"invalid origin {value!r}: expected only a scheme (http or https), "
            f"a host and optionally a port, {example}"
        )
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


class FirewallSection(_Section):
    table: str = Field(default="capport", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
    allow_tcp_ports: tuple[Port, ...] = ()
    allow_udp_ports: tuple[Port, ...] = ()

    @field_validator("allow_tcp_ports", "allow_udp_ports", mode="before")
    @classmethod
    def _parse_ports(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError("expected a list of port numbers, such as [22]")
        return tuple(value)


AuthMethod = Literal["click-through", "user", "voucher", "radius"]


class AuthSection(_Section):
    methods: tuple[AuthMethod, ...] = ("click-through",)
    details: Literal["off", "optional", "required"] = "off"
    device_limit_policy: Literal["reject", "end-oldest"] = "reject"
    user_max_devices: int | None = Field(default=None, ge=1)
    max_failures: int = Field(default=5, ge=1)
    failure_window: Duration = 60.0

    @field_validator("methods", mode="before")
    @classmethod
    def _parse_methods(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or not value:
            raise ValueError(
                'expected a non-empty list such as ["click-through", "voucher"]'
            )
        if len(set(value)) != len(value):
            raise ValueError("each method may appear only once")
        return tuple(value)


class TlsSection(_Section):
    """HTTPS for the portal and the Captive Portal API (RFC 8908 section 4.1)."""

    certificate: Path | None = None
    key: Path | None = None
    port: Port = 443
    hostname: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
    )

    @field_validator("certificate", "key", mode="before")
    @classmethod
    def _parse_path(cls, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a file path as a string")
        return Path(value)

    @model_validator(mode="after")
    def _check_complete(self) -> TlsSection:
        given = [self.certificate is not None, self.key is not None]
        if any(given) and not all(given):
            raise ValueError("set both certificate and key, or neither")
        if all(given) and self.hostname is None:
            raise ValueError(
                "hostname is required with a certificate: the portal's name in it"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.certificate is not None

    def base_url(self) -> str:
        """Return https://hostname/ with the port when it is not 443."""
        if self.port == 443:
            return f"https://{self.hostname}/"
        return f"https://{self.hostname}:{self.port}/"


class ApiSection(_Section):
    """The Captive Portal API of RFC 8908."""

    path: str = Field(default="/api/captive", pattern=r"^/[A-Za-z0-9._~/-]*$")
    venue_info_url: str | None = None
    can_extend_session: bool = False

    @field_validator("venue_info_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"invalid URL {value!r}: expected http:// or https://")
        return value


class RadiusServer(_Section):
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    auth_port: Port = 1812
    acct_port: Port = 1813
    secret: SecretStr | None = None
    secret_file: Path | None = None

    @field_validator("address", mode="before")
    @classmethod
    def _parse_address(
        cls, value: Any
    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        if not isinstance(value, str):
            raise ValueError("expected an IP address as a string")
        return ipaddress.ip_address(value)

    @field_validator("secret_file", mode="before")
    @classmethod
    def _parse_path(cls, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a file path as a string")
        return Path(value)

    @model_validator(mode="after")
    def _check_one_secret(self) -> RadiusServer:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("set exactly one of secret and secret_file")
        return self

    def secret_bytes(self) -> bytes:
        """Return the shared secret, read from secret_file when one is set.

        The file's trailing line break is not part of the secret.
        """
        if self.secret is not None:
            secret = self.secret.get_secret_value().encode()
        else:
            assert self.secret_file is not None
            try:
                secret = self.secret_file.read_bytes().rstrip(b"\r\n")
            except OSError as error:
                raise ConfigError(
                    f"radius.servers: cannot read secret_file {self.secret_file}: "
                    f"{error.strerror}"
                ) from error
        if not secret:
            raise ConfigError(
                f"radius.servers: the shared secret of {self.address} is empty; "
                "set the secret the RADIUS server has for this gateway"
            )
        return secret


class RadiusSection(_Section):
    servers: tuple[RadiusServer, ...] = Field(min_length=1)
    timeout: Duration = 3.0
    retries: int = Field(default=2, ge=0, le=10)
    authentication: Literal["pap", "chap"] = "pap"
    nas_identifier: str = Field(default="capport", min_length=1, max_length=253)
    nas_ip_address: ipaddress.IPv4Address | None = None
    called_station_id: str | None = Field(default=None, min_length=1, max_length=253)
    accounting: bool = True
    interim_interval: Duration = 300.0

    @field_validator("servers", mode="before")
    @classmethod
    def _parse_servers(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError(
                "expected an array of tables, such as [[radius.servers]] "
                'with address = "192.0.2.5"'
            )
        return tuple(value)

    @field_validator("nas_ip_address", mode="before")
    @classmethod
    def _parse_nas_address(cls, value: Any) -> ipaddress.IPv4Address:
        if not isinstance(value, str):
            raise ValueError("expected an IPv4 address as a string")
        return ipaddress.IPv4Address(value)


class ProvisioningSection(_Section):
    """Settings for the dnsmasq file that `capport dhcp-config` writes (RFC 8910)."""

    api_uri: str | None = None
    dhcp_range: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
    lease_time: Duration = 3600.0
    prefix6: ipaddress.IPv6Network | None = None
    hosts: dict[str, tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]] = {}
    # None sends the Captive-Portal RA option when portal.address6 is set.
    ra_captive_portal: bool | None = None
    ra_interval: Duration = 200.0

    @field_validator("ra_interval")
    @classmethod
    def _check_ra_interval(cls, value: float) -> float:
        # MaxRtrAdvInterval is between 4 and 1800 s (RFC 4861 section 6.2.1).
        if not 4 <= value <= 1800:
            raise ValueError(
                f"ra_interval {value:g} s is outside 4 to 1800 s, the range of "
                "MaxRtrAdvInterval in RFC 4861 section 6.2.1"
            )
        return value

    @field_validator("dhcp_range", mode="before")
    @classmethod
    def _parse_range(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(
                'expected the first and last address, such as ["10.20.0.100", '
                '"10.20.0.199"]'
            )
        first, last = (ipaddress.IPv4Address(_string(item)) for item in value)
        if first > last:
            raise ValueError(f"the range starts at {first}, after its end {last}")
        return first, last

    @field_validator("prefix6", mode="before")
    @classmethod
    def _parse_prefix6(cls, value: Any) -> ipaddress.IPv6Network:
        network = ipaddress.IPv6Network(_string(value))
        if network.prefixlen != 64:
            # SLAAC forms addresses from a 64-bit interface identifier
            # (RFC 4862 section 5.5.3, RFC 4291 section 2.5.1).
            raise ValueError(f"{network} is not a /64, which SLAAC needs")
        return network

    @field_validator("hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: Any) -> dict[str, tuple[Any, ...]]:
        if not isinstance(value, dict):
            raise ValueError(
                'expected a table such as {"portal.example" = ["10.0.0.1"]}'
            )
        hosts = {}
        for name, addresses in value.items():
            if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$", name):
                raise ValueError(f"invalid host name {name!r}")
            if not isinstance(addresses, list) or not addresses:
                raise ValueError(f"{name}: expected a non-empty list of addresses")
            hosts[name] = tuple(ipaddress.ip_address(_string(a)) for a in addresses)
        return hosts


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an address as a string, got {value!r}")
    return value


LogLevel = Literal["debug", "info", "warning", "error"]


class LogSection(_Section):
    level: LogLevel = "info"
    format: Literal["text", "keyvalue"] = "text"
    # Levels of single loggers, such as {"capport.enforce" = "debug"}.
    levels: dict[str, LogLevel] = Field(default_factory=dict)
    # The portal's access log: "stderr", "off" or a file path.
    access_log: str = Field(default="stderr", min_length=1)
    # Repeats of one error within this window are counted, not logged again.
    repeat_window: Duration = 60.0

    @field_validator("levels", mode="before")
    @classmethod
    def _parse_levels(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError('expected a table such as {"capport.enforce" = "debug"}')
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", name):
                raise ValueError(f"invalid logger name {name!r}")
        return value


class Config(_Section):
    gateway: GatewaySection
    portal: PortalSection
    responder: ResponderSection = ResponderSection()
    session: SessionSection = SessionSection()
    store: StoreSection = StoreSection()
    control: ControlSection = ControlSection()
    admin: AdminSection = AdminSection()
    firewall: FirewallSection = FirewallSection()
    auth: AuthSection = AuthSection()
    tls: TlsSection = TlsSection()
    api: ApiSection = ApiSection()
    # Entries that replace, remove or add to capport.probes.DEFAULT_PROBES.
    probes: tuple[ProbeEntry, ...] = ()
    provisioning: ProvisioningSection = ProvisioningSection()
    access: AccessSection = AccessSection()
    walled_garden: WalledGardenSection = WalledGardenSection()
    log: LogSection = LogSection()
    radius: RadiusSection | None = None

    @field_validator("probes", mode="before")
    @classmethod
    def _parse_probes(cls, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ValueError("expected [[probes]] tables")
        return tuple(value)

    @model_validator(mode="after")
    def _check_ports_distinct(self) -> Config:
        ports = {"portal.port": self.portal.port, "responder.port": self.responder.port}
        if self.tls.enabled:
            ports["tls.port"] = self.tls.port
        if self.admin.enabled and self.admin.address == self.portal.address:
            ports["admin.port"] = self.admin.port
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                raise ValueError(
                    f"{key} and {seen[port]} are both {port}; each listener "
                    "needs its own port"
                )
            seen[port] = key
        return self

    def portal_url(self) -> str:
        """Return the portal's URL as guests see it, ending in a slash.

        portal.url wins; otherwise the HTTPS URL when TLS is configured,
        because the Captive Portal API must name an https user-portal-url
        (RFC 8908 section 5).
        """
        if self.portal.url is None and self.tls.enabled:
            return self.tls.base_url()
        return self.portal.base_url()

    def portal_url6(self) -> str:
        """Return the portal's URL for guests that connect over IPv6.

        With TLS it is the HTTPS URL, whose name must resolve to both
        addresses because the certificate names no address.
        """
        if self.portal.url is None and self.tls.enabled:
            return self.tls.base_url()
        return self.portal.base_url6()

    def terms_text(self) -> str:
        """Return the terms of use, read from terms_file when one is set.

        Raises ConfigError, naming the file and the fix, when the file
        cannot be read, is larger than MAX_TERMS_BYTES or is not UTF-8.
        """
        path = self.portal.terms_file
        if path is None:
            return self.portal.terms
        try:
            with path.open("rb") as file:
                # A bounded read, so that a device file such as /dev/zero
                # fails the check instead of filling memory.
                raw = file.read(MAX_TERMS_BYTES + 1)
        except OSError as error:
            raise ConfigError(
                f"portal.terms_file: cannot read {path}: {error.strerror}; make "
                "it readable by the user capport runs as, or correct the path"
            ) from error
        if len(raw) > MAX_TERMS_BYTES:
            raise ConfigError(
                f"portal.terms_file: {path} is larger than {MAX_TERMS_BYTES} "
                "bytes; shorten the terms, or link to the full text"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"portal.terms_file: {path} is not UTF-8 text (invalid byte "
                f"0x{raw[error.start]:02x} at offset {error.start}); convert "
                "it, for example with `iconv -f latin1 -t utf-8`"
            ) from error


def load_config(path: Path) -> Config:
    """Read and validate the TOML file at path."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"cannot read configuration file {path}: {error.strerror}"
        ) from error
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    return parse_config(document, source=str(path))


def parse_config(document: dict[str, Any], source: str = "configuration") -> Config:
    """Validate a parsed TOML document."""
    try:
        config = Config.model_validate(document)
    except ValidationError as error:
        problems = "\n".join(f"  {_describe(item)}" for item in error.errors())
        raise ConfigError(f"{source} is invalid:\n{problems}") from None
    config.terms_text()
    _check_radius(config)
    return config


def _check_radius(config: Config) -> None:
    """Check that the radius method and the [radius] section come together."""
    listed = "radius" in config.auth.methods
    if listed and config.radius is None:
        raise ConfigError(
            'auth.methods: "radius" needs a [radius] section with at least '
            "one [[radius.servers]] table"
        )
    if config.radius is None:
        return
    if not listed:
        raise ConfigError(
            'radius: the section is set but auth.methods does not list "radius"; '
            "add it, or remove the section"
        )
    for server in config.radius.servers:
        server.secret_bytes()


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling"
    if kind == "missing":
        return f"{key}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    # A secret never appears in a message, not even an invalid one.
    if "secret" in key:
        return f"{key}: {message}"
    return f"{key}: {message} (got {_redact(error['input'])!r})"


def _redact(value: Any) -> Any:
    """Return value with every table's secrets hidden, as in radius.servers."""
    if isinstance(value, dict):
        return {
            name: "(hidden)" if "secret" in str(name) else _redact(item)
            for name, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(item) for item in value)
    return value
