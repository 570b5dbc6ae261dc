"""The ruleset's treatment of the portal's IPv6 address."""

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from capport.config import parse_config
from capport.enforce.ruleset import RulesetSpec, input_rules

SPEC = RulesetSpec(
    table="capport",
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
    portal_address6=IPv6Address("2001:db8:1::1"),
)
IP6_DADDR = {"payload": {"protocol": "ip6", "field": "daddr"}}
TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}


def matches(rule: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item["match"] for item in rule if "match" in item]


def portal6_rules(spec: RulesetSpec) -> list[list[dict[str, Any]]]:
    return [
        rule
        for rule in input_rules(spec)
        if any(m["left"] == IP6_DADDR for m in matches(rule))
    ]


def test_input_accepts_portal_port_on_address6() -> None:
    rules = portal6_rules(SPEC)
    assert len(rules) == 1
    found = {str(m["left"]): m["right"] for m in matches(rules[0])}
    assert found[str(IP6_DADDR)] == "2001:db8:1::1"
    assert found[str(TCP_DPORT)] == 8080
    assert rules[0][-1] == {"accept": None}


def test_no_ipv6_portal_rule_without_address6() -> None:
    assert portal6_rules(replace(SPEC, portal_address6=None)) == []


def test_spec_takes_address6_from_config() -> None:
    config = parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1", "address6": "2001:db8:1::1"},
        }
    )
    spec = RulesetSpec.from_config(config)
    assert spec.portal_address6 == IPv6Address("2001:db8:1::1")
