"""Router advertisements with the Captive-Portal option (RFC 8910 section 2.3)."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from capport.config import Config, parse_config
from capport.errors import ConfigError
from capport.provisioning import DNSMASQ_ROUTER_LIFETIME, dnsmasq_config
from capport.ra import (
    INITIAL_ADVERTISEMENTS,
    MAX_INITIAL_INTERVAL,
    advertisement_delays,
    captive_portal_option,
    is_router_solicitation,
    next_delay,
    parse_link_local,
    router_advertisement,
    settings_from_config,
)
from capport.reload import restart_keys

URI = "https://portal.lab/api/captive"


def uri_of_length(size: int) -> str:
    prefix = "https://p.lab/"
    return prefix + "a" * (size - len(prefix))


def config(portal: dict[str, Any] | None = None, **provisioning: Any) -> Config:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1", **(portal or {})},
            "provisioning": {"api_uri": URI, **provisioning},
        }
    )


# Packet


def test_advertisement_type_and_code() -> None:
    packet = router_advertisement(URI)
    assert packet[0] == 134
    assert packet[1] == 0


def test_advertisement_checksum_left_to_kernel() -> None:
    assert router_advertisement(URI)[2:4] == b"\0\0"


def test_advertisement_router_lifetime_zero_by_default() -> None:
    (lifetime,) = struct.unpack("!H", router_advertisement(URI)[6:8])
    assert lifetime == 0


def test_advertisement_leaves_parameters_unspecified() -> None:
    packet = router_advertisement(URI)
    assert packet[4] == 0  # Cur Hop Limit
    assert packet[5] == 0  # M and O flags, preference
    assert packet[8:16] == b"\0" * 8  # Reachable Time, Retrans Timer


def test_advertisement_other_config_flag() -> None:
    packet = router_advertisement(URI, router_lifetime=1800, other_config=True)
    assert packet[5] == 0x40
    assert struct.unpack("!H", packet[6:8]) == (1800,)


def test_advertisement_carries_only_captive_portal_option() -> None:
    packet = router_advertisement(URI)
    assert packet[16:] == captive_portal_option(URI)


def test_advertisement_rejects_lifetime_over_9000() -> None:
    with pytest.raises(ValueError, match="9001"):
        router_advertisement(URI, router_lifetime=9001)


@pytest.mark.parametrize("size", [14, 15, 20, 21, 22, 30, 62, 200, 254, 255])
def test_option_length_and_padding(size: int) -> None:
    uri = uri_of_length(size)
    option = captive_portal_option(uri)
    assert option[0] == 37
    assert len(option) % 8 == 0
    assert option[1] * 8 == len(option)
    assert option[1] == (2 + size + 7) // 8
    assert option[2 : 2 + size] == uri.encode()
    assert option[2 + size :] == b"\0" * (len(option) - 2 - size)


def test_option_without_padding_when_aligned() -> None:
    option = captive_portal_option(uri_of_length(22))
    assert len(option) == 24
    assert option.endswith(b"a")


def test_option_of_255_byte_uri() -> None:
    option = captive_portal_option(uri_of_length(255))
    assert option[1] == 33
    assert len(option) == 264
    assert option[-7:] == b"\0" * 7


def test_option_rejects_256_byte_uri() -> None:
    with pytest.raises(ConfigError, match="256 bytes"):
        captive_portal_option(uri_of_length(256))


# Solicitations


def solicitation() -> bytes:
    return bytes([133, 0, 0, 0]) + b"\0" * 4


def test_solicitation_accepted() -> None:
    assert is_router_solicitation(solicitation(), 255)


def test_solicitation_with_lower_hop_limit_ignored() -> None:
    assert not is_router_solicitation(solicitation(), 254)


def test_solicitation_without_hop_limit_ignored() -> None:
    assert not is_router_solicitation(solicitation(), None)


def test_solicitation_with_nonzero_code_ignored() -> None:
    assert not is_router_solicitation(bytes([133, 1]) + b"\0" * 6, 255)


def test_truncated_solicitation_ignored() -> None:
    assert not is_router_solicitation(solicitation()[:7], 255)


def test_other_icmpv6_type_ignored() -> None:
    assert not is_router_solicitation(bytes([135, 0]) + b"\0" * 22, 255)


# Timing


def test_initial_delays_fast() -> None:
    delays = advertisement_delays(200.0, random.Random(1))
    assert len(delays) == INITIAL_ADVERTISEMENTS
    assert all(0 <= delay <= MAX_INITIAL_INTERVAL for delay in delays)


def test_periodic_delay_within_interval() -> None:
    rng = random.Random(2)
    delays = [next_delay(200.0, rng) for _ in range(200)]
    assert min(delays) >= 0.33 * 200
    assert max(delays) <= 200
    assert len(set(delays)) > 100


# Link-local address


IF_INET6 = """\
20010db8000100000000000000000001 03 40 00 80     lan0
fe8000000000000002005efffe005301 03 40 20 80     lan0
fe800000000000000000000000000002 04 40 20 80     wan0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_link_local_of_interface() -> None:
    assert str(parse_link_local(IF_INET6, "lan0")) == "fe80::200:5eff:fe00:5301"


def test_link_local_missing() -> None:
    assert parse_link_local(IF_INET6, "lo") is None


# Settings


def test_settings_on_with_address6() -> None:
    settings = settings_from_config(config({"address6": "2001:db8:1::1"}))
    assert settings is not None
    assert settings.uri == URI
    assert settings.interface == "lan0"
    assert settings.interval == 200.0


def test_settings_off_without_address6() -> None:
    assert settings_from_config(config()) is None


def test_settings_off_when_disabled() -> None:
    portal = {"address6": "2001:db8:1::1"}
    assert settings_from_config(config(portal, ra_captive_portal=False)) is None


def test_settings_on_when_enabled_without_address6() -> None:
    assert settings_from_config(config(ra_captive_portal=True)) is not None


def test_settings_lifetime_zero_without_dnsmasq_ras() -> None:
    settings = settings_from_config(config(ra_captive_portal=True))
    assert settings is not None
    assert settings.router_lifetime == 0
    assert not settings.other_config


def test_settings_repeat_dnsmasq_lifetime_with_prefix6() -> None:
    settings = settings_from_config(
        config(ra_captive_portal=True, prefix6="2001:db8:1::/64")
    )
    assert settings is not None
    assert settings.router_lifetime == DNSMASQ_ROUTER_LIFETIME
    assert settings.other_config


def test_settings_reject_long_uri() -> None:
    document = config(ra_captive_portal=True, api_uri=uri_of_length(256))
    with pytest.raises(ConfigError, match="256 bytes"):
        settings_from_config(document)


def test_ra_interval_accepts_duration() -> None:
    assert config(ra_interval="5m").provisioning.ra_interval == 300.0


@pytest.mark.parametrize("interval", [3, "31m"])
def test_ra_interval_outside_rfc_range_rejected(interval: Any) -> None:
    with pytest.raises(ConfigError, match="ra_interval"):
        config(ra_interval=interval)


def test_ra_interval_change_needs_restart() -> None:
    old = config(ra_interval="200s")
    new = config(ra_interval="100s")
    assert restart_keys(old, new) == ["provisioning.ra_interval"]


def test_ra_switch_change_needs_restart() -> None:
    old = config(ra_captive_portal=True)
    new = config(ra_captive_portal=False)
    assert restart_keys(old, new) == ["provisioning.ra_captive_portal"]


def test_dnsmasq_router_lifetime_pinned() -> None:
    document = config(
        dhcp_range=["192.0.2.100", "192.0.2.199"], prefix6="2001:db8:1::/64"
    )
    lines = dnsmasq_config(document).splitlines()
    assert f"ra-param=lan0,600,{DNSMASQ_ROUTER_LIFETIME}" in lines
