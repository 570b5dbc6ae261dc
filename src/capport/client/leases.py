"""Finding the Captive Portal API URI in DHCP lease files (RFC 8910).

A network announces its API URI in DHCPv4 option 114 (RFC 8910 section
2.1). DHCP clients record the options they received in lease files, each
in its own format:

- dhclient (ISC): /var/lib/dhcp/dhclient*.leases, blocks of
  `lease { ... }` with `option NAME VALUE;` lines. Option 114 appears as
  `captive-portal` when dhclient.conf declares that name, otherwise as
  `unknown-114`, or as `default-url` (dhcp-options(5) of ISC dhclient
  4.4). Values are quoted strings or colon-separated hex bytes.
  dhclient appends each new lease, so the last block is the current one.
- NetworkManager: /var/lib/NetworkManager/*.lease, in dhclient's format
  when it runs dhclient, and its internal client writes KEY=VALUE lines.
- systemd-networkd: /run/systemd/netif/leases/IFINDEX, KEY=VALUE lines
  with CAPTIVE_PORTAL=.

The parsers are pure, and discover_api_uri() reads the files.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("capport.client")

# RFC 8910 section 2: this value means the network has no captive portal.
UNRESTRICTED = "urn:ietf:params:capport:unrestricted"

DEFAULT_LEASE_PATTERNS = (
    "/var/lib/dhcp/dhclient*.leases",
    "/var/lib/NetworkManager/*.lease",
    "/run/systemd/netif/leases/*",
)

DHCLIENT_OPTION_NAMES = ("captive-portal", "unknown-114", "default-url")
KEY_VALUE_NAMES = ("CAPTIVE_PORTAL", "CAPTIVEPORTAL")

# Lease files are small. A larger one is read from its end, where the
# newest lease is.
MAX_LEASE_FILE_BYTES = 1024 * 1024

_LEASE_BLOCK = re.compile(r"\blease\s*\{(.*?)\n\s*\}", re.DOTALL)
_OPTION_LINE = re.compile(r"^\s*option\s+([A-Za-z0-9-]+)\s+(.*?);\s*$", re.MULTILINE)
_HEX_BYTES = re.compile(r"^[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2})*$")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3}|.)")


@dataclass(frozen=True)
class LeaseOption:
    """Option 114 as a lease file recorded it."""

    value: str
    path: Path

    @property
    def api_uri(self) -> str | None:
        """The API URI, or None when the value is RFC 8910's "unrestricted"."""
        return None if self.value == UNRESTRICTED else self.value


def decode_dhclient_value(raw: str) -> str | None:
    """Decode a dhclient option value: a quoted string or hex bytes."""
    raw = raw.strip()
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        # dhclient writes non-printable bytes as octal escapes (\ooo).
        text = _OCTAL_ESCAPE.sub(_unescape, raw[1:-1])
        return _clean(text.encode("latin-1", "replace").decode("utf-8", "replace"))
    if _HEX_BYTES.match(raw):
        data = bytes(int(part, 16) for part in raw.split(":"))
        return _clean(data.decode("utf-8", "replace"))
    return None


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    if len(escaped) == 3:
        return chr(int(escaped, 8))
    return escaped


def _clean(value: str) -> str | None:
    # Some servers count a terminating NUL into the option length.
    value = value.rstrip("\x00").strip()
    return value or None


def parse_dhclient_leases(text: str) -> str | None:
    """Return option 114 of the last lease in a dhclient lease file, or None."""
    blocks = _LEASE_BLOCK.findall(text)
    if not blocks:
        return None
    options = {name.lower(): value for name, value in _OPTION_LINE.findall(blocks[-1])}
    for name in DHCLIENT_OPTION_NAMES:
        if name in options:
            return decode_dhclient_value(options[name])
    return None


def parse_key_value_lease(text: str) -> str | None:
    """Return CAPTIVE_PORTAL from a KEY=VALUE lease file, or None."""
    for line in text.splitlines():
        key, separator, value = line.partition("=")
        if separator and key.strip().upper() in KEY_VALUE_NAMES:
            return _clean(value.strip().strip("\"'"))
    return None


def parse_lease_file(text: str) -> str | None:
    """Return option 114 from a lease file in any of the supported formats."""
    if _LEASE_BLOCK.search(text):
        return parse_dhclient_leases(text)
    return parse_key_value_lease(text)


def lease_files(patterns: Iterable[str] = DEFAULT_LEASE_PATTERNS) -> list[Path]:
    """Return the files matching patterns, most recently modified first."""
    found: list[tuple[float, Path]] = []
    for pattern in patterns:
        for name in glob.glob(pattern):
            path = Path(name)
            try:
                if path.is_file():
                    found.append((path.stat().st_mtime, path))
            except OSError:
                continue
    found.sort(key=lambda item: item[0], reverse=True)
    return [path for _, path in found]


def read_lease_option(path: Path) -> LeaseOption | None:
    """Return option 114 recorded in the lease file at path, or None.

    An unreadable file (permissions, removed meanwhile) gives None.
    """
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - MAX_LEASE_FILE_BYTES))
            data = file.read(MAX_LEASE_FILE_BYTES)
    except OSError as error:
        log.debug("Skipping lease file %s: %s", path, error)
        return None
    value = parse_lease_file(data.decode("utf-8", "replace"))
    return LeaseOption(value, path) if value else None


def discover_api_uri(paths: Iterable[Path] | None = None) -> LeaseOption | None:
    """Return option 114 from the newest lease file that records one.

    paths defaults to the lease files of dhclient, NetworkManager and
    systemd-networkd, newest first. Check LeaseOption.api_uri: it is None
    when the network announced that it has no portal.
    """
    # NOTE: a host with several interfaces has a lease file for each, and
    # the newest one that records option 114 wins, which may not be the
    # interface that carries the default route.
    for path in lease_files() if paths is None else paths:
        option = read_lease_option(path)
        if option is not None:
            log.debug("Found option 114 %r in %s.", option.value, path)
            return option
    return None
