"""Finding DHCP option 114 in lease files of dhclient, NetworkManager and networkd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from capport.client.leases import (
    UNRESTRICTED,
    decode_dhclient_value,
    discover_api_uri,
    lease_files,
    parse_dhclient_leases,
    parse_key_value_lease,
    read_lease_option,
)

API = "https://portal.example.test/api/capport"
API_HEX = ":".join(f"{byte:02x}" for byte in API.encode())


def dhclient_lease(option_line: str, address: str = "192.0.2.11") -> str:
    return (
        "lease {\n"
        '  interface "wlan0";\n'
        f"  fixed-address {address};\n"
        "  option subnet-mask 255.255.255.0;\n"
        f"  {option_line}\n"
        "  renew 4 2026/12/03 10:00:00;\n"
        "  expire 4 2026/12/03 11:00:00;\n"
        "}\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        f'option captive-portal "{API}";',
        f'option unknown-114 "{API}";',
        f"option unknown-114 {API_HEX};",
        f'option default-url "{API}";',
    ],
    ids=["named", "unknown-quoted", "unknown-hex", "default-url"],
)
def test_dhclient_option_forms(line: str) -> None:
    assert parse_dhclient_leases(dhclient_lease(line)) == API


def test_dhclient_last_lease_wins() -> None:
    text = dhclient_lease('option captive-portal "https://old.test/";')
    text += dhclient_lease(f'option captive-portal "{API}";', "192.0.2.12")
    assert parse_dhclient_leases(text) == API


def test_dhclient_last_lease_without_option() -> None:
    text = dhclient_lease(f'option captive-portal "{API}";')
    text += dhclient_lease("option domain-name-servers 192.0.2.1;")
    assert parse_dhclient_leases(text) is None


def test_dhclient_trailing_nul_removed() -> None:
    assert decode_dhclient_value(API_HEX + ":00") == API


def test_dhclient_octal_escape_decoded() -> None:
    assert decode_dhclient_value('"https://p.test/a\\000"') == "https://p.test/a"


def test_dhclient_invalid_value_ignored() -> None:
    assert decode_dhclient_value("not-a-value") is None


def test_networkd_key_value() -> None:
    text = (
        "# This is private data. Do not parse.\n"
        f"ADDRESS=192.0.2.11\nCAPTIVE_PORTAL={API}\n"
    )
    assert parse_key_value_lease(text) == API


def test_key_value_without_option() -> None:
    assert parse_key_value_lease("ADDRESS=192.0.2.11\n") is None


def test_unrestricted_has_no_api_uri(tmp_path: Path) -> None:
    path = tmp_path / "3"
    path.write_text(f"CAPTIVE_PORTAL={UNRESTRICTED}\n")
    option = read_lease_option(path)
    assert option is not None
    assert option.value == UNRESTRICTED
    assert option.api_uri is None


def test_discover_prefers_newest_file(tmp_path: Path) -> None:
    old = tmp_path / "dhclient.wlan0.leases"
    old.write_text(dhclient_lease('option captive-portal "https://old.test/";'))
    os.utime(old, (1_000_000, 1_000_000))
    new = tmp_path / "internal-uuid-wlan0.lease"
    new.write_text(f"CAPTIVE_PORTAL={API}\n")
    files = lease_files([str(tmp_path / "*")])
    assert files == [new, old]
    option = discover_api_uri(files)
    assert option is not None
    assert option.api_uri == API
    assert option.path == new


def test_discover_skips_files_without_option(tmp_path: Path) -> None:
    empty = tmp_path / "a.lease"
    empty.write_text("ADDRESS=192.0.2.11\n")
    recorded = tmp_path / "b.leases"
    recorded.write_text(dhclient_lease(f'option unknown-114 "{API}";'))
    option = discover_api_uri([empty, recorded])
    assert option is not None
    assert option.path == recorded


def test_unreadable_lease_file_skipped(tmp_path: Path) -> None:
    missing = tmp_path / "gone.lease"
    assert read_lease_option(missing) is None


def test_large_lease_file_read_from_end(tmp_path: Path) -> None:
    path = tmp_path / "dhclient.leases"
    filler = dhclient_lease("option domain-name-servers 192.0.2.1;") * 20000
    path.write_text(filler + dhclient_lease(f'option captive-portal "{API}";'))
    assert path.stat().st_size > 1024 * 1024
    option = read_lease_option(path)
    assert option is not None
    assert option.api_uri == API
