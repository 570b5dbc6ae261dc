"""The nftables JSON for download counters, quotas, rates, MAC lists and the garden."""

from ipaddress import IPv4Address, ip_address, ip_network
from typing import Any

import pytest

from capport.enforce import limits, lists
from capport.enforce.base import Grant, Limits, Traffic
from capport.enforce.ruleset import (
    OptionalRules,
    RulesetSpec,
    direction_chain_commands,
    grant_document,
    install_document,
    revoke_document,
)
from capport.models import Device

SPEC = RulesetSpec("capport", "lan0", IPv4Address("192.0.2.1"), 80, 8511)
A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
V6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")
QUOTA_DOWN = "quota-down-020000000011-c000020b"


def commands(document: dict[str, Any], verb: str, kind: str) -> list[dict[str, Any]]:
    return [c[verb][kind] for c in document["nftables"] if kind in c.get(verb, {})]


def elements(document: dict[str, Any], verb: str, name: str) -> list[Any]:
    found = []
    for element in commands(document, verb, "element"):
        if element["name"] == name:
            found += element["elem"]
    return found


def chain_rules(document: dict[str, Any], chain: str) -> list[str]:
    """Return a chain's rules, each as compact text for ordering."""
    rules = commands(document, "add", "rule")
    return [str(rule["expr"]) for rule in rules if rule["chain"] == chain]


def position(rules: list[str], fragment: str) -> int:
    found = [i for i, rule in enumerate(rules) if fragment in rule]
    assert len(found) == 1, f"{fragment!r} in rules {found}"
    return found[0]


# Names


def test_object_name_encodes_mac_and_address() -> None:
    assert limits.object_name("quota-down", A) == QUOTA_DOWN


def test_object_name_of_ipv6_device() -> None:
    name = limits.object_name("rate-up", V6)

    assert name == "rate-up-020000000013-20010db8000100000000000000000013"


@pytest.mark.parametrize(
    ("rate", "burst"), [(125_000, 65_536), (2_500_000, 250_000), (1, 65_536)]
)
def test_rate_burst_size(rate: int, burst: int) -> None:
    assert limits.rate_burst(rate) == burst


# Declarations


def test_install_declares_download_sets_with_counters() -> None:
    sets = {s["name"]: s for s in commands(install_document(SPEC, []), "add", "set")}

    assert sets["down4"]["type"] == "ipv4_addr"
    assert sets["down6"]["type"] == "ipv6_addr"
    assert sets["down4"]["stmt"] == [{"counter": None}]
    assert sets["down4"]["flags"] == ["timeout"]


def test_install_declares_object_maps() -> None:
    maps = {m["name"]: m for m in commands(install_document(SPEC, []), "add", "map")}

    assert maps["quota_up4"]["type"] == ["ether_addr", "ipv4_addr"]
    assert maps["quota_up4"]["map"] == "quota"
    assert maps["quota_down4"]["type"] == "ipv4_addr"
    assert maps["rate_down6"]["map"] == "limit"
    assert len(maps) == 12


def test_install_declares_mac_and_garden_sets() -> None:
    sets = {s["name"]: s for s in commands(install_document(SPEC, []), "add", "set")}

    assert sets["trusted"]["type"] == "ether_addr"
    assert sets["blocked"]["type"] == "ether_addr"
    assert sets["garden4"]["flags"] == ["interval"]
    assert sets["garden_hosts6"]["flags"] == ["timeout"]


# Granting


def test_grant_without_limits_adds_download_element_only() -> None:
    document = grant_document("capport", [Grant(A, 60)])

    assert elements(document, "add", "down4")[-1] == {
        "elem": {"val": "192.0.2.11", "timeout": 60}
    }
    created = [q["name"] for q in commands(document, "add", "quota")]
    deleted = [q["name"] for q in commands(document, "delete", "quota")]
    assert sorted(created) == sorted(deleted)


def test_grant_with_quota_creates_object_and_map_element() -> None:
    grant = Grant(A, 60, Limits(quota_down=1_000_000))
    document = grant_document("capport", [grant])

    quota = commands(document, "add", "quota")[-1]
    assert quota["name"] == QUOTA_DOWN
    assert quota["bytes"] == 1_000_000
    assert quota["used"] == 0
    assert quota["inv"] is True
    assert elements(document, "add", "quota_down4")[-1] == [
        {"elem": {"val": "192.0.2.11", "timeout": 60}},
        QUOTA_DOWN,
    ]


def test_grant_removes_old_objects_before_creating() -> None:
    grant = Grant(A, 60, Limits(quota_down=1_000_000))
    verbs = [
        (verb, body["quota"]["name"])
        for command in grant_document("capport", [grant])["nftables"]
        for verb, body in command.items()
        if "quota" in body
    ]

    assert verbs.index(("delete", QUOTA_DOWN)) < len(verbs) - 1
    assert verbs[-1] == ("add", QUOTA_DOWN)


def test_total_quota_shared_by_both_directions() -> None:
    grant = Grant(A, 60, Limits(quota_total=5000))
    document = install_document(SPEC, [grant])
    name = limits.object_name("quota-total", A)

    assert elements(document, "add", "quota_total_up4")[0][1] == name
    assert elements(document, "add", "quota_total_down4")[0][1] == name


def test_install_carries_used_bytes_into_quotas() -> None:
    grant = Grant(A, 60, Limits(quota_up=100, quota_total=500), Traffic(40, 300))
    quotas = {
        q["name"]: q for q in commands(install_document(SPEC, [grant]), "add", "quota")
    }

    assert quotas[limits.object_name("quota-up", A)]["used"] == 40
    assert quotas[limits.object_name("quota-total", A)]["used"] == 340


def test_used_bytes_capped_at_quota() -> None:
    grant = Grant(A, 60, Limits(quota_down=100), Traffic(0, 10_000))
    (quota,) = commands(install_document(SPEC, [grant]), "add", "quota")

    assert quota["used"] == 100


def test_rate_limit_object_in_bytes_per_second() -> None:
    grant = Grant(A, 60, Limits(rate_up=2_500_000))
    (limit,) = commands(install_document(SPEC, [grant]), "add", "limit")

    assert limit["rate"] == 2_500_000
    assert limit["rate_unit"] == "bytes"
    assert limit["per"] == "second"
    assert limit["burst"] == 250_000
    assert limit["inv"] is True


def test_ipv6_grant_uses_ipv6_maps() -> None:
    document = install_document(SPEC, [Grant(V6, 60, Limits(quota_up=10))])

    assert elements(document, "add", "quota_up6")
    assert not elements(document, "add", "quota_up4")
    assert elements(document, "add", "down6")


# Revoking


def test_revoke_deletes_every_object_after_adding_it() -> None:
    document = revoke_document("capport", [A])
    added = {q["name"] for q in commands(document, "add", "quota")}
    deleted = {q["name"] for q in commands(document, "delete", "quota")}

    assert added == deleted
    assert added == {
        limits.object_name(prefix, A)
        for prefix in ("quota-up", "quota-down", "quota-total")
    }
    assert {q["name"] for q in commands(document, "delete", "limit")} == {
        limits.object_name("rate-up", A),
        limits.object_name("rate-down", A),
    }


def test_revoke_deletes_map_elements_before_objects() -> None:
    document = revoke_document("capport", [A])["nftables"]
    kinds = [
        (next(iter(c)), next(iter(c[next(iter(c))]))) for c in document if "delete" in c
    ]
    last_element = max(i for i, k in enumerate(kinds) if k[1] == "element")
    first_object = min(i for i, k in enumerate(kinds) if k[1] in ("quota", "limit"))

    assert last_element < first_object


# Rule order


def test_from_lan_rule_order() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")

    blocked = position(rules, "@blocked")
    trusted = position(rules, "@trusted")
    limited = position(rules, "@limited_up4")
    allowed = position(rules, "@allowed4")
    assert blocked < trusted < limited < allowed


def test_from_lan_jumps_to_limits_for_limited_devices() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")

    assert "'target': 'upload_limits'" in rules[position(rules, "@limited_up4")]
    assert "'target': 'upload_limits'" in rules[position(rules, "@limited_up6")]


def test_to_lan_limits_downloads_before_accepting_replies() -> None:
    rules = chain_rules(install_document(SPEC, []), "to_lan")

    assert position(rules, "@limited_down4") < position(rules, "@down4")
    assert position(rules, "@limited_down6") < position(rules, "@down6")
    assert "'target': 'download_limits'" in rules[position(rules, "@limited_down4")]


def test_limit_chains_hold_the_map_rules() -> None:
    document = install_document(SPEC, [])
    upload = chain_rules(document, "upload_limits")
    download = chain_rules(document, "download_limits")

    assert [position(upload, f"@{name}") for name in ("quota_up4", "rate_up6")]
    assert [position(download, f"@{name}") for name in ("quota_down4", "rate_down6")]
    assert len(upload) == 6
    assert len(download) == 6


def test_from_lan_garden_after_allowed_before_reject() -> None:
    rules = chain_rules(install_document(SPEC, []), "from_lan")
    reject = position(rules, "tcp reset")

    assert position(rules, "@allowed6") < position(rules, "@garden4") < reject
    assert position(rules, "@garden_hosts6") < reject


def test_limited_device_joins_limited_sets() -> None:
    grant = Grant(A, 60, Limits(quota_up=1000, rate_down=2000))
    document = grant_document("capport", [grant], {})

    assert elements(document, "add", "limited_up4")[-1] == {
        "elem": {"val": {"concat": [A.mac, str(A.ip)]}, "timeout": 60}
    }
    assert elements(document, "add", "limited_down4")[-1] == {
        "elem": {"val": str(A.ip), "timeout": 60}
    }


def test_upload_only_limit_skips_limited_down_set() -> None:
    grant = Grant(A, 60, Limits(rate_up=2000))
    document = grant_document("capport", [grant], {})

    assert elements(document, "add", "limited_up4")
    assert elements(document, "add", "limited_down4") == []


def test_total_quota_limits_both_directions() -> None:
    grant = Grant(V6, 60, Limits(quota_total=1000))
    document = grant_document("capport", [grant], {})

    assert elements(document, "add", "limited_up6")
    assert elements(document, "add", "limited_down6")


def test_unlimited_grant_joins_no_limited_set() -> None:
    document = grant_document("capport", [Grant(A, 60)], {})

    for name in ("limited_up4", "limited_down4"):
        assert elements(document, "add", name) == []


def test_revoke_removes_limited_elements() -> None:
    document = revoke_document("capport", [A], {A: frozenset({"rate-up"})})

    assert elements(document, "delete", "limited_up4") == [
        {"concat": [A.mac, str(A.ip)]}
    ]
    assert elements(document, "delete", "limited_down4") == [str(A.ip)]


def test_revoke_without_limits_leaves_limited_sets() -> None:
    document = revoke_document("capport", [A], {})

    assert elements(document, "delete", "limited_up4") == []


def test_quota_rules_drop() -> None:
    rule = limits.download_rules(4)[0]

    assert rule[0] == {
        "quota": {
            "map": {
                "key": {"payload": {"protocol": "ip", "field": "daddr"}},
                "data": "@quota_down4",
            }
        }
    }
    assert rule[-1] == {"drop": None}


def test_prerouting_passes_trusted_and_garden_before_redirect() -> None:
    rules = [
        str(rule["expr"])
        for rule in commands(install_document(SPEC, []), "add", "rule")
        if rule["chain"] == "prerouting"
    ]
    redirect = min(i for i, rule in enumerate(rules) if "redirect" in rule)

    assert position(rules, "@trusted") < redirect
    assert position(rules, "@garden_hosts4") < redirect


# MAC lists and the walled garden


def test_mac_lists_flush_then_add() -> None:
    commands_ = lists.mac_list_commands("capport", ["02:00:00:00:00:aa"], [])

    assert commands_[0] == {
        "flush": {"set": {"family": "inet", "table": "capport", "name": "trusted"}}
    }
    assert commands_[1]["add"]["element"]["elem"] == ["02:00:00:00:00:aa"]
    assert commands_[2]["flush"]["set"]["name"] == "blocked"
    assert len(commands_) == 3


def test_garden_networks_collapsed_into_prefixes() -> None:
    networks = [ip_network("10.0.0.0/9"), ip_network("10.128.0.0/9")]
    commands_ = lists.garden_commands("capport", networks, {})
    added = [c["add"]["element"] for c in commands_ if "add" in c]

    assert added == [
        {
            "family": "inet",
            "table": "capport",
            "name": "garden4",
            "elem": [{"prefix": {"addr": "10.0.0.0", "len": 8}}],
        }
    ]


def test_garden_addresses_get_timeouts_by_family() -> None:
    addresses = {ip_address("198.51.100.82"): 900.0, ip_address("2001:db8::82"): 1.5}
    commands_ = lists.garden_commands("capport", [], addresses)
    added = {
        c["add"]["element"]["name"]: c["add"]["element"]["elem"]
        for c in commands_
        if "add" in c
    }

    assert added["garden_hosts4"] == [
        {"elem": {"val": "198.51.100.82", "timeout": 900}}
    ]
    assert added["garden_hosts6"] == [{"elem": {"val": "2001:db8::82", "timeout": 2}}]


def test_install_loads_given_contents_last() -> None:
    contents = lists.mac_list_commands("capport", [], ["02:00:00:00:00:bb"])
    document = install_document(SPEC, [], contents)

    assert document["nftables"][-len(contents) :] == contents


# Reading counters


def test_parse_usage_reads_download_counters_and_quotas() -> None:
    listing = {
        "nftables": [
            {"quota": {"name": QUOTA_DOWN, "bytes": 1000, "used": 900}},
            {
                "set": {
                    "name": "down4",
                    "elem": [
                        {
                            "elem": {
                                "val": "192.0.2.11",
                                "counter": {"packets": 3, "bytes": 850},
                            }
                        }
                    ],
                }
            },
        ]
    }

    usage = limits.parse_usage(listing, {A: 120})

    assert usage[A].traffic == Traffic(120, 850)
    assert usage[A].quota_used == {"down": 900}


def test_parse_usage_of_device_without_download_element() -> None:
    usage = limits.parse_usage({"nftables": []}, {A: 5})

    assert usage[A].traffic == Traffic(5, 0)
    assert usage[A].quota_used == {}


# Removing only the objects that exist


def test_grant_with_known_objects_removes_only_those() -> None:
    existing = {A: frozenset({"quota-down"})}
    document = grant_document("capport", [Grant(A, 60)], existing)

    assert [q["name"] for q in commands(document, "delete", "quota")] == [QUOTA_DOWN]
    assert commands(document, "delete", "limit") == []


def test_grant_of_device_without_objects_removes_none() -> None:
    document = grant_document("capport", [Grant(A, 60)], {})

    assert commands(document, "add", "quota") == []
    assert commands(document, "delete", "quota") == []
    assert elements(document, "delete", "down4") == ["192.0.2.11"]


def test_grants_batched_into_one_command_per_set() -> None:
    devices = [
        Device.parse(f"02:00:00:00:01:{n:02x}", f"192.0.2.{n}") for n in range(50)
    ]
    document = install_document(SPEC, [Grant(d, 60) for d in devices])
    down = [e for e in commands(document, "add", "element") if e["name"] == "down4"]

    assert len(down) == 1
    assert len(down[0]["elem"]) == 50


def test_object_prefixes_of_limits() -> None:
    prefixes = limits.object_prefixes(Limits(quota_total=1, rate_down=2))

    assert prefixes == {"quota-total", "rate-down"}


def test_parse_objects_reads_names_back() -> None:
    listing = {
        "nftables": [
            {"quota": {"name": limits.object_name("quota-up", V6)}},
            {"limit": {"name": limits.object_name("rate-down", V6)}},
            {"quota": {"name": "unrelated"}},
            {"limit": {"name": "rate-up-zz-00"}},
        ]
    }

    assert limits.parse_objects(listing) == {V6: {"quota-up", "rate-down"}}


# Rule groups left out while nothing needs them


def test_install_without_groups_has_minimal_chains() -> None:
    document = install_document(SPEC, [], optional=frozenset())
    from_lan = chain_rules(document, "from_lan")
    to_lan = chain_rules(document, "to_lan")

    assert "@allowed4" in from_lan[0]
    assert not [rule for rule in from_lan if "@blocked" in rule or "@limited" in rule]
    assert not [rule for rule in to_lan if "@limited" in rule]


def test_limits_group_adds_only_limit_jumps() -> None:
    document = install_document(SPEC, [], optional=frozenset({OptionalRules.LIMITS}))
    from_lan = chain_rules(document, "from_lan")

    assert position(from_lan, "@limited_up4") == 0
    assert not [rule for rule in from_lan if "@trusted" in rule]


def test_mac_lists_group_adds_blocked_and_trusted() -> None:
    optional = frozenset({OptionalRules.MAC_LISTS})
    from_lan = chain_rules(install_document(SPEC, [], optional=optional), "from_lan")

    assert position(from_lan, "@blocked") == 0
    assert position(from_lan, "@trusted") == 1
    assert not [rule for rule in from_lan if "@limited" in rule]


def test_direction_chain_commands_flush_before_adding() -> None:
    commands = direction_chain_commands("capport", OptionalRules.ALL)
    flushed = [i for i, command in enumerate(commands) if "flush" in command]
    chains = [commands[i]["flush"]["chain"]["name"] for i in flushed]

    assert chains == ["from_lan", "to_lan"]
    assert flushed[0] == 0
    assert all(
        command["add"]["rule"]["chain"] == "from_lan"
        for command in commands[1 : flushed[1]]
    )


def test_direction_chain_commands_match_install() -> None:
    optional = frozenset({OptionalRules.LIMITS})
    commands = direction_chain_commands("capport", optional)
    rewritten = [c["add"]["rule"] for c in commands if "add" in c]
    installed = [
        rule
        for rule in install_document(SPEC, [], optional=optional)["nftables"]
        if "rule" in rule.get("add", {})
        and rule["add"]["rule"]["chain"] in ("from_lan", "to_lan")
    ]

    assert rewritten == [rule["add"]["rule"] for rule in installed]
