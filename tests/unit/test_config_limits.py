"""Configuration of session limits, MAC lists and the walled garden."""

from ipaddress import ip_network
from typing import Any

import pytest

from capport.config import parse_config, parse_rate, parse_size
from capport.errors import ConfigError

BASE: dict[str, Any] = {
    "gateway": {"interface": "lan0"},
    "portal": {"address": "192.0.2.1"},
}


def config_with(**tables: Any) -> Any:
    return parse_config({**BASE, **tables})


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1000, 1000),
        ("1MB", 1_000_000),
        ("500kB", 500_000),
        ("2GiB", 2 * 2**30),
        ("1.5 MB", 1_500_000),
        ("64 KiB", 65536),
    ],
)
def test_parse_size(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1XB", "", "-5", 0, True, "1 mb"])
def test_parse_size_rejects(text: Any) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        (8000, 8000),
        ("10Mbit", 10_000_000),
        ("512kbit", 512_000),
        ("1Gbit/s", 10**9),
    ],
)
def test_parse_rate(text: Any, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["10MB", "fast", 4, False])
def test_parse_rate_rejects(text: Any) -> None:
    with pytest.raises(ValueError, match="invalid rate"):
        parse_rate(text)


def test_session_limits_default_to_none() -> None:
    session = config_with().session

    assert session.idle_timeout is None
    assert session.quota_total is None
    assert session.bandwidth_down is None
    assert session.accounting_interval == 30


def test_session_limits_parsed() -> None:
    session = config_with(
        session={"idle_timeout": "10m", "quota_up": "1GB", "bandwidth_up": "5Mbit"}
    ).session

    assert session.idle_timeout == 600
    assert session.quota_up == 10**9
    assert session.bandwidth_up == 5_000_000


def test_invalid_quota_names_key() -> None:
    with pytest.raises(ConfigError, match="session.quota_down: invalid size"):
        config_with(session={"quota_down": "lots"})


def test_mac_lists_normalised() -> None:
    access = config_with(
        access={"trusted_macs": ["02-00-00-00-00-AA"], "blocked_macs": []}
    ).access

    assert access.trusted_macs == ("02:00:00:00:00:aa",)
    assert access.blocked_macs == ()


def test_invalid_mac_names_key() -> None:
    with pytest.raises(ConfigError, match="access.blocked_macs: invalid MAC"):
        config_with(access={"blocked_macs": ["02:00"]})


def test_garden_networks_and_hosts() -> None:
    garden = config_with(
        walled_garden={
            "networks": ["198.51.100.81/32", "2001:db8::/32"],
            "hosts": ["Login.Example.org."],
            "refresh": "1m",
        }
    ).walled_garden

    assert garden.networks == (
        ip_network("198.51.100.81/32"),
        ip_network("2001:db8::/32"),
    )
    assert garden.hosts == ("login.example.org",)
    assert garden.refresh == 60


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("networks", ["300.0.0.0/8"], "invalid network '300.0.0.0/8'"),
        ("networks", "10.0.0.0/8", "expected a list of networks"),
        ("hosts", ["bad name"], "invalid host name 'bad name'"),
        ("hosts", ["-x.org"], "invalid host name"),
    ],
)
def test_invalid_garden_rejected(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with(walled_garden={key: value})
