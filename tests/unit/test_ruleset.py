"""The nftables JSON documents, checked as data without the kernel."""

import math
from ipaddress import IPv4Address
from typing import Any

import pytest

from capport.config import parse_config
from capport.enforce.base import Grant
from capport.enforce.ruleset import (
    ElementState,
    RulesetSpec,
    grant_document,
    has_table,
    install_document,
    parse_set_elements,
    revoke_document,
    timeout_seconds,
    uninstall_document,
)
from capport.models import Device

SPEC = RulesetSpec(
    table="capport",
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
    allow_tcp_ports=(22,),
    allow_udp_ports=(123,),
)
A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")
V6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")
TABLE = {"family": "inet", "name": "capport"}


def commands(document: dict[str, Any], verb: str, kind: str) -> list[dict[str, Any]]:
    return [
        command[verb][kind]
        for command in document["nftables"]
        if verb in command and kind in command[verb]
    ]


def chain_rules(document: dict[str, Any], chain: str) -> list[list[dict[str, Any]]]:
    rules = commands(document, "add", "rule")
    return [rule["expr"] for rule in rules if rule["chain"] == chain]


def matches(rule: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [expr["match"] for expr in rule if "match" in expr]


def verdict(rule: list[dict[str, Any]]) -> dict[str, Any]:
    return rule[-1]


def index_of(rules: list[list[dict[str, Any]]], left: Any, right: Any) -> int:
    """Return the position of the one rule that matches left == right."""
    found = [
        position
        for position, rule in enumerate(rules)
        if any(m["left"] == left and m["right"] == right for m in matches(rule))
    ]
    assert len(found) == 1, f"{left} == {right} matched by rules {found}"
    return found[0]


def redirects(document: dict[str, Any]) -> list[list[dict[str, Any]]]:
    rules = chain_rules(document, "prerouting")
    return [rule for rule in rules if "redirect" in verdict(rule)]


def on_allowed_sets(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the commands of document that change the authorised sets."""
    return [
        command
        for command in document["nftables"]
        if command[next(iter(command))].get("element", {}).get("name")
        in ("allowed4", "allowed6")
    ]


def match_on(rule: list[dict[str, Any]], left: dict[str, Any]) -> dict[str, Any]:
    found = [match for match in matches(rule) if match["left"] == left]
    assert len(found) == 1, f"{left} not matched once in {rule}"
    return found[0]


IIFNAME = {"meta": {"key": "iifname"}}
OIFNAME = {"meta": {"key": "oifname"}}
TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
UDP_DPORT = {"payload": {"protocol": "udp", "field": "dport"}}
KEY4 = {
    "concat": [
        {"payload": {"protocol": "ether", "field": "saddr"}},
        {"payload": {"protocol": "ip", "field": "saddr"}},
    ]
}
KEY6 = {
    "concat": [
        {"payload": {"protocol": "ether", "field": "saddr"}},
        {"payload": {"protocol": "ip6", "field": "saddr"}},
    ]
}


# The table as a whole


def test_install_replaces_table_in_one_document() -> None:
    document = install_document(SPEC, [])
    first_three = document["nftables"][:3]
    assert first_three == [
        {"add": {"table": TABLE}},
        {"delete": {"table": TABLE}},
        {"add": {"table": TABLE}},
    ]
    assert commands(document, "delete", "table") == [TABLE]


def test_install_uses_configured_table_name() -> None:
    spec = RulesetSpec("guests", "lan0", IPv4Address("192.0.2.1"), 80, 8511)
    document = install_document(spec, [Grant(A, 60)])

    tables = {rule["table"] for rule in commands(document, "add", "rule")}
    assert tables == {"guests"}
    assert commands(document, "add", "table")[0]["name"] == "guests"


@pytest.mark.parametrize(
    ("name", "address_type"), [("allowed4", "ipv4_addr"), ("allowed6", "ipv6_addr")]
)
def test_sets_have_timeouts_and_counters(name: str, address_type: str) -> None:
    sets = {s["name"]: s for s in commands(install_document(SPEC, []), "add", "set")}

    assert sets[name]["type"] == ["ether_addr", address_type]
    assert sets[name]["flags"] == ["timeout"]
    assert sets[name]["stmt"] == [{"counter": None}]


@pytest.mark.parametrize(
    ("name", "kind", "priority"),
    [("prerouting", "nat", -100), ("input", "filter", 0), ("forward", "filter", 0)],
)
def test_base_chains_are_named_after_hooks(name: str, kind: str, priority: int) -> None:
    chains = {
        c["name"]: c for c in commands(install_document(SPEC, []), "add", "chain")
    }

    assert chains[name]["hook"] == name
    assert chains[name]["type"] == kind
    assert chains[name]["prio"] == priority
    assert chains[name]["policy"] == "accept"


def test_base_chain_priorities_are_integers() -> None:
    # libnftables 1.0.6 turns a chain with a named priority into a regular
    # chain that no hook calls.
    for chain in commands(install_document(SPEC, []), "add", "chain"):
        if "hook" in chain:
            assert isinstance(chain["prio"], int)


def test_regular_chains_added_before_rules() -> None:
    document = install_document(SPEC, [])["nftables"]
    added = [next(iter(command["add"])) for command in document if "add" in command]
    last_chain = max(i for i, kind in enumerate(added) if kind == "chain")
    first_rule = added.index("rule")

    assert last_chain < first_rule


# prerouting


def test_prerouting_redirects_port_80_of_unauthorised_devices() -> None:
    rule = redirects(install_document(SPEC, []))[0]

    assert match_on(rule, IIFNAME)["right"] == "lan0"
    assert match_on(rule, TCP_DPORT)["right"] == 80
    lookup = match_on(rule, KEY4)
    assert lookup["op"] == "!="
    assert lookup["right"] == "@allowed4"
    assert verdict(rule) == {"redirect": {"port": 8511}}


def test_prerouting_leaves_gateway_addresses_alone() -> None:
    rule = redirects(install_document(SPEC, []))[0]

    fib = match_on(rule, {"fib": {"result": "type", "flags": ["daddr"]}})
    assert fib["op"] == "!="
    assert fib["right"] == "local"


def test_prerouting_redirects_ipv6_devices_too() -> None:
    rule = redirects(install_document(SPEC, []))[1]

    lookup = match_on(rule, KEY6)
    assert lookup["op"] == "!="
    assert lookup["right"] == "@allowed6"
    assert verdict(rule) == {"redirect": {"port": 8511}}


# input


def test_input_accepts_everything_not_from_lan() -> None:
    rule = chain_rules(install_document(SPEC, []), "input")[0]

    assert matches(rule) == [{"op": "!=", "left": IIFNAME, "right": "lan0"}]
    assert verdict(rule) == {"accept": None}


def test_input_accepts_dhcp_dns_and_extra_udp_ports() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")
    udp = [r for r in rules if any(m["left"] == UDP_DPORT for m in matches(r))]

    assert len(udp) == 1
    assert match_on(udp[0], UDP_DPORT)["right"] == {"set": [53, 67, 123, 547]}
    assert verdict(udp[0]) == {"accept": None}


def test_input_accepts_dns_responder_and_extra_tcp_ports() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")
    tcp = [
        r for r in rules if len(matches(r)) == 1 and matches(r)[0]["left"] == TCP_DPORT
    ]

    assert len(tcp) == 1
    assert tcp[0][0]["match"]["right"] == {"set": [22, 53, 8511]}
    assert verdict(tcp[0]) == {"accept": None}


def test_input_accepts_portal_port_on_portal_address() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")
    daddr = {"payload": {"protocol": "ip", "field": "daddr"}}
    portal = [r for r in rules if any(m["left"] == daddr for m in matches(r))]

    assert len(portal) == 1
    assert match_on(portal[0], daddr)["right"] == "192.0.2.1"
    assert match_on(portal[0], TCP_DPORT)["right"] == 8080
    assert verdict(portal[0]) == {"accept": None}


def test_input_accepts_echo_and_neighbour_discovery() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")
    icmp = {"payload": {"protocol": "icmp", "field": "type"}}
    icmpv6 = {"payload": {"protocol": "icmpv6", "field": "type"}}
    rights = {
        m["right"] if isinstance(m["right"], str) else tuple(m["right"]["set"])
        for r in rules
        for m in matches(r)
        if m["left"] in (icmp, icmpv6)
    }

    assert "echo-request" in rights
    (ndp,) = [right for right in rights if isinstance(right, tuple)]
    assert {"nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert"} <= set(
        ndp
    )


def test_input_accepts_established_before_rejecting() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")
    state = match_on(rules[1], {"ct": {"key": "state"}})

    assert state["right"] == ["established", "related"]
    assert verdict(rules[1]) == {"accept": None}


def test_input_rejects_the_rest_from_lan() -> None:
    rules = chain_rules(install_document(SPEC, []), "input")

    assert verdict(rules[-2]) == {"reject": {"type": "tcp reset"}}
    assert match_on(rules[-2], {"meta": {"key": "l4proto"}})["right"] == "tcp"
    assert rules[-1] == [{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]


# forward


def test_forward_sends_each_direction_to_its_chain() -> None:
    rules = chain_rules(install_document(SPEC, []), "forward")

    assert len(rules) == 2
    assert match_on(rules[0], IIFNAME)["right"] == "lan0"
    assert verdict(rules[0]) == {"jump": {"target": "from_lan"}}
    assert match_on(rules[1], OIFNAME)["right"] == "lan0"
    assert verdict(rules[1]) == {"jump": {"target": "to_lan"}}


def test_from_lan_accepts_authorised_with_one_lookup() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")
    allowed4 = rules[index_of(rules, KEY4, "@allowed4")]
    allowed6 = rules[index_of(rules, KEY6, "@allowed6")]

    assert matches(allowed4) == [{"op": "==", "left": KEY4, "right": "@allowed4"}]
    assert verdict(allowed4) == {"accept": None}
    assert verdict(allowed6) == {"accept": None}


def test_from_lan_decides_ipv4_device_within_five_rules() -> None:
    # blocked, trusted, limited and allowed: the common case comes early.
    rules = chain_rules(install_document(SPEC, []), "from_lan")

    assert index_of(rules, KEY4, "@allowed4") == 3


def test_from_lan_rejects_unauthorised_tcp_with_reset() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")
    (rule,) = [r for r in rules if verdict(r) == {"reject": {"type": "tcp reset"}}]

    assert match_on(rule, {"meta": {"key": "l4proto"}})["right"] == "tcp"
    assert rule is rules[-2]


def test_from_lan_rejects_other_unauthorised_traffic() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")

    assert rules[-1] == [{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]


def test_to_lan_drops_all_but_replies_first() -> None:
    rules = chain_rules(install_document(SPEC, []), "to_lan")

    assert match_on(rules[0], {"ct": {"key": "state"}}) == {
        "op": "!",
        "left": {"ct": {"key": "state"}},
        "right": ["established", "related"],
    }
    assert verdict(rules[0]) == {"drop": None}


def test_to_lan_counts_replies_to_devices() -> None:
    rules = chain_rules(install_document(SPEC, []), "to_lan")
    daddr4 = {"payload": {"protocol": "ip", "field": "daddr"}}
    daddr6 = {"payload": {"protocol": "ip6", "field": "daddr"}}

    assert verdict(rules[index_of(rules, daddr4, "@down4")]) == {"accept": None}
    assert verdict(rules[index_of(rules, daddr6, "@down6")]) == {"accept": None}


def test_to_lan_accepts_other_replies() -> None:
    rules = chain_rules(install_document(SPEC, []), "to_lan")

    assert rules[-1] == [{"accept": None}]


# Elements


def test_install_loads_grants_with_timeouts() -> None:
    document = install_document(SPEC, [Grant(A, 600), Grant(V6, 59.2)])
    elements = {e["name"]: e["elem"] for e in commands(document, "add", "element")}

    assert elements["allowed4"] == [
        {"elem": {"val": {"concat": [A.mac, "192.0.2.11"]}, "timeout": 600}}
    ]
    assert elements["allowed6"] == [
        {"elem": {"val": {"concat": [V6.mac, "2001:db8:1::13"]}, "timeout": 60}}
    ]


def test_install_without_grants_adds_no_elements() -> None:
    assert commands(install_document(SPEC, []), "add", "element") == []


def test_grant_deletes_then_adds_again() -> None:
    document = {
        "nftables": on_allowed_sets(
            grant_document("capport", [Grant(A, 600), Grant(B, 30)])
        )
    }
    verbs = [next(iter(command)) for command in document["nftables"]]
    timed = [
        {"elem": {"val": {"concat": [A.mac, "192.0.2.11"]}, "timeout": 600}},
        {"elem": {"val": {"concat": [B.mac, "192.0.2.12"]}, "timeout": 30}},
    ]
    keys = [{"concat": [A.mac, "192.0.2.11"]}, {"concat": [B.mac, "192.0.2.12"]}]

    assert verbs == ["add", "delete", "add"]
    assert document["nftables"][0]["add"]["element"]["elem"] == timed
    assert document["nftables"][1]["delete"]["element"]["elem"] == keys
    assert document["nftables"][2]["add"]["element"]["elem"] == timed


def test_grant_keeps_last_timeout_of_repeated_device() -> None:
    document = grant_document("capport", [Grant(A, 600), Grant(A, 30)])
    added = document["nftables"][2]["add"]["element"]["elem"]

    assert [element["elem"]["timeout"] for element in added] == [30]


def test_grant_puts_ipv6_devices_in_allowed6() -> None:
    document = grant_document("capport", [Grant(V6, 600)])
    names = {
        command[next(iter(command))]["element"]["name"]
        for command in document["nftables"]
        if "element" in command[next(iter(command))]
    }

    assert "allowed6" in names
    assert "allowed4" not in names
    assert "down6" in names
    assert "down4" not in names


def test_grant_of_nothing_is_empty() -> None:
    assert grant_document("capport", []) == {"nftables": []}


def test_revoke_adds_then_deletes_same_elements() -> None:
    document = revoke_document("capport", [A, A, V6])
    by_set: dict[str, list[str]] = {}
    for command in on_allowed_sets(document):
        verb = next(iter(command))
        element = command[verb]["element"]
        by_set.setdefault(element["name"], []).append(verb)
        assert all("timeout" not in str(value) for value in element["elem"])

    assert by_set == {"allowed4": ["add", "delete"], "allowed6": ["add", "delete"]}
    first = document["nftables"][0]["add"]["element"]["elem"]
    assert first == [{"concat": [A.mac, "192.0.2.11"]}]


def test_uninstall_adds_then_deletes_table() -> None:
    assert uninstall_document("capport") == {
        "nftables": [{"add": {"table": TABLE}}, {"delete": {"table": TABLE}}]
    }


@pytest.mark.parametrize(
    ("timeout", "seconds"), [(1, 1), (0.001, 1), (59.5, 60), (3600, 3600)]
)
def test_timeout_rounds_up_to_seconds(timeout: float, seconds: int) -> None:
    assert timeout_seconds(timeout) == seconds


@pytest.mark.parametrize("timeout", [0, -5, math.nan, math.inf])
def test_timeout_rejects_non_positive_or_infinite(timeout: float) -> None:
    with pytest.raises(ValueError, match="invalid grant timeout"):
        timeout_seconds(timeout)


# Parsing listings


LISTING = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {
            "set": {
                "family": "inet",
                "name": "allowed4",
                "table": "capport",
                "type": ["ether_addr", "ipv4_addr"],
                "flags": ["timeout"],
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["02:00:00:00:00:11", "192.0.2.11"]},
                            "timeout": 3600,
                            "expires": 3599,
                            "counter": {"packets": 7, "bytes": 532},
                        }
                    },
                    {"concat": ["02:00:00:00:00:12", "192.0.2.12"]},
                ],
                "stmt": [{"counter": None}],
            }
        },
        {
            "set": {
                "family": "inet",
                "name": "allowed6",
                "table": "capport",
                "elem": [
                    {
                        "elem": {
                            "val": {"concat": ["02:00:00:00:00:13", "2001:db8:1::13"]},
                            "timeout": 60,
                            "expires": 12,
                            "counter": {"packets": 0, "bytes": 0},
                        }
                    }
                ],
            }
        },
        {"chain": {"family": "inet", "table": "capport", "name": "forward"}},
    ]
}


def test_parse_reads_remaining_and_counters() -> None:
    states = parse_set_elements(LISTING)

    assert states[A] == ElementState(remaining=3599.0, packets=7, bytes=532)
    assert states[V6] == ElementState(remaining=12.0, packets=0, bytes=0)


def test_parse_bare_element_has_no_expiry() -> None:
    states = parse_set_elements(LISTING)

    assert states[B] == ElementState(remaining=math.inf, packets=0, bytes=0)


def test_parse_of_empty_set_is_empty() -> None:
    listing = {"nftables": [{"set": {"name": "allowed4", "table": "capport"}}]}

    assert parse_set_elements(listing) == {}


@pytest.mark.parametrize(
    "element",
    [{"concat": ["02:00:00:00:00:11"]}, {"concat": ["02:00:00:00:00:11", "x"]}, 17],
)
def test_parse_rejects_unexpected_element(element: Any) -> None:
    listing = {"nftables": [{"set": {"name": "allowed4", "elem": [element]}}]}

    with pytest.raises(ValueError, match="unexpected set element"):
        parse_set_elements(listing)


def test_has_table_finds_inet_table_by_name() -> None:
    listing = {
        "nftables": [
            {"metainfo": {}},
            {"table": {"family": "ip", "name": "capport"}},
            {"table": {"family": "inet", "name": "filter"}},
        ]
    }

    assert not has_table(listing, "capport")
    listing["nftables"].append({"table": {"family": "inet", "name": "capport"}})
    assert has_table(listing, "capport")


def test_spec_from_config() -> None:
    config = parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1", "port": 8080},
            "responder": {"port": 8600},
            "firewall": {"table": "guests", "allow_tcp_ports": [22]},
        }
    )

    assert RulesetSpec.from_config(config) == RulesetSpec(
        table="guests",
        lan_interface="lan0",
        portal_address=IPv4Address("192.0.2.1"),
        portal_port=8080,
        responder_port=8600,
        allow_tcp_ports=(22,),
        allow_udp_ports=(),
    )
