"""The admin API's origin check behind a TLS proxy, and admin.origins."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from capport.config import parse_config
from capport.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import Admin, start_admin  # noqa: E402

MAC = "02:00:00:00:00:11"
PROXY = "https://gw.example.net"
MINIMAL = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}


@pytest.fixture
def plain() -> Iterator[Admin]:
    yield from start_admin()


@pytest.fixture
def proxied() -> Iterator[Admin]:
    yield from start_admin(origins=[PROXY])


def trust(admin: Admin, headers: dict[str, str]) -> int:
    response = admin.client.put(
        f"/api/v1/trusted/{MAC}", headers={**admin.auth, **headers}
    )
    return response.status_code


def test_proxy_origin_without_setting_is_403(plain: Admin) -> None:
    headers = {"Host": "gw.example.net", "Origin": PROXY}
    response = plain.client.put(
        f"/api/v1/trusted/{MAC}", headers={**plain.auth, **headers}
    )
    assert response.status_code == 403
    assert "admin.origins" in response.json()["error"]


def test_forwarded_proto_is_not_trusted(plain: Admin) -> None:
    headers = {
        "Host": "gw.example.net",
        "Origin": PROXY,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "gw.example.net",
    }
    assert trust(plain, headers) == 403


def test_forwarded_header_is_not_trusted(plain: Admin) -> None:
    headers = {
        "Host": "gw.example.net",
        "Origin": PROXY,
        "Forwarded": "proto=https;host=gw.example.net",
    }
    assert trust(plain, headers) == 403


def test_configured_origin_may_change_state(proxied: Admin) -> None:
    headers = {"Host": "gw.example.net", "Origin": PROXY}
    assert trust(proxied, headers) == 200
    assert MAC in proxied.gateway.mac_lists.trusted


def test_configured_origin_matches_any_case(proxied: Admin) -> None:
    assert trust(proxied, {"Origin": "HTTPS://GW.Example.NET"}) == 200


def test_configured_origin_keeps_own_origin(proxied: Admin) -> None:
    assert trust(proxied, {"Origin": "http://testserver"}) == 200


def test_other_port_of_configured_host_is_403(proxied: Admin) -> None:
    assert trust(proxied, {"Origin": "https://gw.example.net:8443"}) == 403


def test_other_scheme_of_configured_host_is_403(proxied: Admin) -> None:
    assert trust(proxied, {"Origin": "http://gw.example.net"}) == 403


def test_cross_site_fetch_stays_403_with_origins(proxied: Admin) -> None:
    headers = {"Origin": PROXY, "Sec-Fetch-Site": "cross-site"}
    assert trust(proxied, headers) == 403


# The admin.origins setting


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://gw.example.net", "https://gw.example.net"),
        ("HTTPS://GW.Example.net/", "https://gw.example.net"),
        ("https://gw.example.net:443", "https://gw.example.net"),
        ("http://gw.example.net:80", "http://gw.example.net"),
        ("https://gw.example.net:8443", "https://gw.example.net:8443"),
        ("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"),
    ],
)
def test_origin_is_stored_as_browsers_send_it(given: str, stored: str) -> None:
    config = parse_config({**MINIMAL, "admin": {"origins": [given]}})
    assert config.admin.origins == (stored,)


@pytest.mark.parametrize(
    "given",
    [
        "gw.example.net",
        "ftp://gw.example.net",
        "https://gw.example.net/dashboard",
        "https://gw.example.net/?a=1",
        "https://user@gw.example.net",
        "https://gw.example.net:99999",
        "https://",
        "*",
    ],
)
def test_invalid_origin_is_named(given: str) -> None:
    with pytest.raises(ConfigError, match=r"admin\.origins: invalid origin"):
        parse_config({**MINIMAL, "admin": {"origins": [given]}})


def test_origins_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match=r"admin\.origins: expected a list"):
        parse_config({**MINIMAL, "admin": {"origins": PROXY}})


def test_origins_default_to_none() -> None:
    assert parse_config(MINIMAL).admin.origins == ()
