"""The dnsmasq configuration that announces the Captive Portal API (RFC 8910)."""

from __future__ import annotations

from typing import Any

import pytest

from capport.config import Config, parse_config
from capport.errors import ConfigError
from capport.provisioning import (
    MAX_URI_BYTES,
    UNRESTRICTED,
    DnsmasqFiles,
    api_uri,
    dnsmasq_config,
)
from capport.reload import restart_keys

BASE: dict[str, Any] = {
    "gateway": {"interface": "lan0"},
    "portal": {"address": "192.0.2.1", "address6": "2001:db8:1::1"},
    "provisioning": {
        "dhcp_range": ["192.0.2.100", "192.0.2.199"],
        "prefix6": "2001:db8:1::/64",
        "hosts": {"portal.lab": ["2001:db8:1::1", "192.0.2.1"]},
    },
}


def config(**provisioning: Any) -> Config:
    document = {**BASE, "provisioning": {**BASE["provisioning"], **provisioning}}
    return parse_config(document)


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_option_114_carries_uri() -> None:
    text = dnsmasq_config(config(api_uri="https://portal.lab/api/captive"))
    assert 'dhcp-option=114,"https://portal.lab/api/captive"' in lines(text)


def test_option6_103_carries_uri() -> None:
    text = dnsmasq_config(config(api_uri="https://portal.lab/api/captive"))
    assert 'dhcp-option=option6:103,"https://portal.lab/api/captive"' in lines(text)


def test_uri_derived_from_portal_address() -> None:
    assert api_uri(config()) == "https://192.0.2.1/api/captive"


def test_uri_derived_from_portal_url_host() -> None:
    document = {**BASE, "portal": {**BASE["portal"], "url": "http://portal.lab:8080/"}}
    assert api_uri(parse_config(document)) == "https://portal.lab/api/captive"


def test_uri_of_255_bytes_accepted() -> None:
    uri = "https://portal.lab/" + "a" * (MAX_URI_BYTES - len("https://portal.lab/"))
    assert api_uri(config(api_uri=uri)) == uri


def test_uri_over_255_bytes_rejected_with_length() -> None:
    uri = "https://portal.lab/" + "a" * 300
    with pytest.raises(ConfigError, match=rf"{len(uri)} bytes long.*at most 255"):
        dnsmasq_config(config(api_uri=uri))


@pytest.mark.parametrize(
    "uri",
    ["http://portal.lab/api", 'https://portal.lab/"x', "https://portal.lab/a b"],
)
def test_unusable_uri_rejected(uri: str) -> None:
    with pytest.raises(ConfigError, match="provisioning.api_uri"):
        dnsmasq_config(config(api_uri=uri))


def test_unrestricted_urn_accepted() -> None:
    assert api_uri(config(api_uri=UNRESTRICTED)) == UNRESTRICTED


def test_missing_dhcp_range_named() -> None:
    document = {**BASE, "provisioning": {"prefix6": "2001:db8:1::/64"}}
    with pytest.raises(ConfigError, match="provisioning.dhcp_range is missing"):
        dnsmasq_config(parse_config(document))


def test_dhcp_range_and_dns_for_lan() -> None:
    text = lines(dnsmasq_config(config(lease_time="2h")))
    assert "dhcp-range=192.0.2.100,192.0.2.199,7200" in text
    assert "dhcp-option=option:router,192.0.2.1" in text
    assert "dhcp-option=option:dns-server,192.0.2.1" in text
    assert "dhcp-option=option6:dns-server,[2001:db8:1::1]" in text
    assert "interface=lan0" in text


def test_router_advertisements_for_prefix6() -> None:
    text = lines(dnsmasq_config(config()))
    assert "enable-ra" in text
    assert "dhcp-range=2001:db8:1::,ra-stateless,64,3600" in text


def test_no_ipv6_without_prefix6() -> None:
    document = {
        **BASE,
        "provisioning": {"dhcp_range": ["192.0.2.100", "192.0.2.199"]},
    }
    text = dnsmasq_config(parse_config(document))
    assert "enable-ra" not in text
    assert "option6" not in text


def test_host_records_ipv4_first() -> None:
    text = lines(dnsmasq_config(config()))
    assert "host-record=portal.lab,192.0.2.1,2001:db8:1::1" in text


def test_queries_never_forwarded() -> None:
    text = lines(dnsmasq_config(config()))
    assert "no-resolv" in text
    assert not [line for line in text if line.startswith("server=")]


def test_own_pid_and_lease_files() -> None:
    files = DnsmasqFiles(pid_file="/run/x/dnsmasq.pid", lease_file="/run/x/l")
    text = lines(dnsmasq_config(config(), files))
    assert "pid-file=/run/x/dnsmasq.pid" in text
    assert "dhcp-leasefile=/run/x/l" in text


def test_prefix6_must_be_64() -> None:
    with pytest.raises(ConfigError, match=r"provisioning\.prefix6.*not a /64"):
        config(prefix6="2001:db8:1::/56")


def test_reversed_dhcp_range_rejected() -> None:
    with pytest.raises(ConfigError, match=r"provisioning\.dhcp_range"):
        config(dhcp_range=["192.0.2.199", "192.0.2.100"])


def test_link_local_portal_address6_rejected() -> None:
    document = {**BASE, "portal": {"address": "192.0.2.1", "address6": "fe80::1"}}
    with pytest.raises(ConfigError, match=r"portal\.address6"):
        parse_config(document)


def test_portal_url6_brackets_address6() -> None:
    assert config().portal.base_url6() == "http://[2001:db8:1::1]/"


def test_portal_url6_is_configured_url() -> None:
    document = {**BASE, "portal": {**BASE["portal"], "url": "http://portal.lab/"}}
    assert parse_config(document).portal.base_url6() == "http://portal.lab/"


def test_reload_ignores_provisioning_keys() -> None:
    assert restart_keys(config(lease_time="1h"), config(lease_time="2h")) == []
