"""The text install and the nfnetlink dumps agree with JSON in a real kernel.

The enforcer installs the table from a buffer in nft's text syntax and
reads its counters from the kernel's nfnetlink dumps. Each test here builds
the same state or reads the same counters through libnftables' JSON
interface too, and compares the two.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv6Address, ip_network
from typing import Any

import pytest
from netns import (
    NamespaceLab,
    discard,
    namespace_lab_fixture,  # noqa: F401
    serve,
)

from capport.enforce import limits, lists, nftsyntax, ruleset
from capport.enforce.base import Grant, Limits, Traffic
from capport.enforce.nftables import NftablesEnforcer, check_ruleset
from capport.enforce.ruleset import RulesetSpec
from capport.errors import ConfigError, EnforcementError
from capport.models import Device

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

SPEC = RulesetSpec(
    table="capport",
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
    allow_tcp_ports=(22,),
    allow_udp_ports=(123,),
    portal_tls_port=8443,
    portal_address6=IPv6Address("2001:db8:1::1"),
)
CLIENT = Device.parse(NamespaceLab.client_mac, NamespaceLab.client_ip)
CLIENT6 = Device.parse(NamespaceLab.client_mac, NamespaceLab.client_ip6)
LIMITED = Device.parse("02:00:00:00:00:12", "192.0.2.12")
LIMITED6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")
GRANTS = [
    Grant(CLIENT, 600),
    Grant(CLIENT6, 600),
    Grant(LIMITED, 300, Limits(quota_total=1_048_576, rate_down=125_000)),
    Grant(
        LIMITED6,
        300,
        Limits(quota_up=5000, quota_down=2048, rate_up=250_000),
        Traffic(1000, 1024),
    ),
]


@pytest.fixture
def enforcer(namespace_lab: NamespaceLab) -> Iterator[NftablesEnforcer]:
    """An enforcer in the gateway namespace with MAC lists and a walled garden."""
    with namespace_lab.gateway.entered():
        enforcer = NftablesEnforcer(SPEC)
    enforcer.set_mac_lists(["02:00:00:00:00:aa"], ["02:00:00:00:00:bb"])
    enforcer.set_garden(
        [ip_network("203.0.113.0/24"), ip_network("2001:db8:f::/48")],
        {IPv4Address("198.51.100.53"): 300, IPv6Address("2001:db8:e::53"): 300},
    )
    try:
        yield enforcer
    finally:
        enforcer.close()


def contents(table: str) -> list[dict[str, Any]]:
    """Build the MAC list and garden commands the enforcer fixture loads."""
    return lists.mac_list_commands(
        table, ["02:00:00:00:00:aa"], ["02:00:00:00:00:bb"]
    ) + lists.garden_commands(
        table,
        [ip_network("203.0.113.0/24"), ip_network("2001:db8:f::/48")],
        {IPv4Address("198.51.100.53"): 300, IPv6Address("2001:db8:e::53"): 300},
    )


def table_state(lab: NamespaceLab) -> list[dict[str, Any]]:
    """List the table as JSON without handles and times left, which always differ."""
    output = lab.gateway.run(["nft", "-j", "list", "table", "inet", SPEC.table])
    state = []
    for item in json.loads(output)["nftables"]:
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        body.pop("handle", None)
        for element in body.get("elem", []) if kind in ("set", "map") else []:
            # A map element is a list of its key and its value.
            key = element[0] if isinstance(element, list) else element
            if isinstance(key, dict):
                key.get("elem", {}).pop("expires", None)
        state.append({kind: body})
    return state


def send_upload(lab: NamespaceLab, size: int) -> None:
    with serve(lab.upstream, "0.0.0.0", 443, discard), lab.connect(443) as sock:
        sock.sendall(b"x" * size)


def list_json(enforcer: NftablesEnforcer, document: ruleset.Document) -> Any:
    return enforcer.apply(document, "listing as JSON")


def test_text_install_builds_same_table_as_json(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install(GRANTS)
    from_text = table_state(namespace_lab)

    document = ruleset.install_document(SPEC, GRANTS, contents(SPEC.table))
    enforcer.apply(document, "installing from JSON")
    from_json = table_state(namespace_lab)

    assert len(from_text) == len(from_json)
    for text_item, json_item in zip(from_text, from_json, strict=True):
        assert text_item == json_item


def test_dumped_elements_agree_with_json_listing(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install(GRANTS)
    send_upload(namespace_lab, 50_000)

    dumped = enforcer.elements()
    from_json = {}
    for name in (ruleset.ALLOWED4, ruleset.ALLOWED6):
        listing = list_json(enforcer, ruleset.list_set_document(SPEC.table, name))
        from_json.update(ruleset.parse_set_elements(listing))

    assert set(dumped) == set(from_json)
    assert dumped[CLIENT].bytes > 50_000
    for device, state in dumped.items():
        assert state.packets == from_json[device].packets
        assert state.bytes == from_json[device].bytes
        # The two listings are taken moments apart.
        assert math.isclose(state.remaining, from_json[device].remaining, abs_tol=2)


def test_dumped_usage_agrees_with_json_listing(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install(GRANTS)
    send_upload(namespace_lab, 20_000)

    dumped = enforcer.usage()
    listing = list_json(enforcer, ruleset.list_table_document(SPEC.table))
    up_bytes = {d: s.bytes for d, s in ruleset.parse_set_elements(listing).items()}
    from_json = limits.parse_usage(listing, up_bytes)

    assert dumped == from_json
    assert dumped[CLIENT].traffic.down > 0
    assert dumped[LIMITED6].quota_used == {"up": 1000, "down": 1024}


def test_usage_without_quotas_agrees_with_json_listing(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    # Without quota objects in its index, usage() skips the quota dump.
    enforcer.install([Grant(CLIENT, 600), Grant(CLIENT6, 600), Grant(LIMITED, 60)])
    send_upload(namespace_lab, 20_000)

    dumped = enforcer.usage()
    listing = list_json(enforcer, ruleset.list_table_document(SPEC.table))
    up_bytes = {d: s.bytes for d, s in ruleset.parse_set_elements(listing).items()}
    from_json = limits.parse_usage(listing, up_bytes)

    assert dumped == from_json
    assert dumped[CLIENT].traffic.up > 20_000
    assert dumped[CLIENT].traffic.down > 0


def test_failed_text_install_keeps_previous_table(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 60)])
    before = table_state(namespace_lab)
    # The kernel rejects a nat chain on the forward hook, after the batch
    # has already deleted and rebuilt the table.
    buffer = nftsyntax.install_buffer(SPEC, [Grant(LIMITED, 60)], [])
    buffer += (
        f"add chain inet {SPEC.table} broken "
        "{ type nat hook forward priority 0; policy accept; }\n"
    )

    with pytest.raises(EnforcementError, match="installing a broken table failed"):
        enforcer.apply_text_in_child(buffer, "installing a broken table")

    assert table_state(namespace_lab) == before
    assert list(enforcer.authorised()) == [CLIENT]


def test_check_rejects_table_named_like_keyword(namespace_lab: NamespaceLab) -> None:
    spec = dataclasses.replace(SPEC, table="counter")
    with namespace_lab.gateway.entered():
        with pytest.raises(ConfigError, match="firewall.table 'counter' is invalid"):
            check_ruleset(spec)
        check_ruleset(SPEC)


def test_dump_of_missing_table_names_table_and_cause(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    enforcer.install([Grant(CLIENT, 60)])
    enforcer.uninstall()

    with pytest.raises(EnforcementError) as raised:
        enforcer.usage()

    message = str(raised.value)
    assert "reading the counters of table inet capport failed" in message
    assert "the table or set does not exist" in message


def test_dump_works_from_another_thread(
    namespace_lab: NamespaceLab, enforcer: NftablesEnforcer
) -> None:
    # The gateway reads counters in a worker thread, which is not in the
    # namespace the enforcer was created in.
    enforcer.install([Grant(CLIENT, 600), Grant(LIMITED, 600)])

    with ThreadPoolExecutor(1) as pool:
        devices = pool.submit(enforcer.authorised).result()

    assert set(devices) == {CLIENT, LIMITED}
