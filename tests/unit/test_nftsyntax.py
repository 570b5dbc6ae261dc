"""The install transaction in nft's text syntax, checked as text without the kernel.

The lab test tests/lab/test_text_paths.py checks that the kernel builds the
same table from it as from the JSON document.
"""

import math
from ipaddress import IPv4Address, IPv6Address

import pytest

from capport.bench.devices import fake_device
from capport.enforce.base import Grant, Limits
from capport.enforce.nftsyntax import ELEMENT_CHUNK, install_buffer, render_command
from capport.enforce.ruleset import RulesetSpec
from capport.models import Device

SPEC = RulesetSpec(
    table="capport",
    lan_interface="lan0",
    portal_address=IPv4Address("192.0.2.1"),
    portal_port=8080,
    responder_port=8511,
)
A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
V6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")


def lines(buffer: str) -> list[str]:
    return buffer.splitlines()


def test_buffer_replaces_table_first() -> None:
    first = lines(install_buffer(SPEC, [], []))[:3]

    assert first == [
        "add table inet capport",
        "delete table inet capport",
        "add table inet capport",
    ]


def test_buffer_writes_both_elements_of_each_device() -> None:
    buffer = lines(install_buffer(SPEC, [Grant(A, 600.2), Grant(V6, 60)], []))

    assert (
        "add element inet capport allowed4 { 02:00:00:00:00:11 . 192.0.2.11 "
        "timeout 601s }"
    ) in buffer
    assert (
        "add element inet capport allowed6 { 02:00:00:00:00:13 . 2001:db8:1::13 "
        "timeout 60s }"
    ) in buffer
    assert "add element inet capport down4 { 192.0.2.11 timeout 601s }" in buffer
    assert "add element inet capport down6 { 2001:db8:1::13 timeout 60s }" in buffer


def test_buffer_keeps_last_grant_of_device() -> None:
    buffer = install_buffer(SPEC, [Grant(A, 600), Grant(A, 30)], [])

    assert "timeout 30s" in buffer
    assert "timeout 600s" not in buffer


def test_buffer_without_grants_adds_no_elements() -> None:
    assert "add element" not in install_buffer(SPEC, [], [])


def test_buffer_creates_quota_objects_and_map_elements() -> None:
    buffer = lines(install_buffer(SPEC, [Grant(A, 60, Limits(quota_total=5000))], []))
    name = "quota-total-020000000011-c000020b"

    assert f"add quota inet capport {name} {{ over 5000 bytes used 0 bytes }}" in buffer
    assert (
        "add element inet capport quota_total_down4 "
        f'{{ 192.0.2.11 timeout 60s : "{name}" }}'
    ) in buffer


def test_render_quotes_interface_names() -> None:
    rule = {
        "add": {
            "rule": {
                "family": "inet",
                "table": "capport",
                "chain": "input",
                "expr": [
                    {
                        "match": {
                            "op": "!=",
                            "left": {"meta": {"key": "iifname"}},
                            "right": "lan0",
                        }
                    },
                    {"accept": None},
                ],
            }
        }
    }

    assert (
        render_command(rule)
        == 'add rule inet capport input meta iifname != "lan0" accept'
    )


def test_render_rejects_unknown_statement() -> None:
    rule = {
        "add": {
            "rule": {
                "family": "inet",
                "table": "capport",
                "chain": "input",
                "expr": [{"log": {"prefix": "x"}}],
            }
        }
    }

    with pytest.raises(ValueError, match="cannot write the nftables statement"):
        render_command(rule)


def test_render_rejects_unknown_command() -> None:
    command = {"replace": {"rule": {"family": "inet", "table": "capport"}}}

    with pytest.raises(ValueError, match="cannot write the nftables command"):
        render_command(command)


def test_render_negated_flags_and_jump() -> None:
    rule = {
        "add": {
            "rule": {
                "family": "inet",
                "table": "capport",
                "chain": "down",
                "expr": [
                    {
                        "match": {
                            "op": "!",
                            "left": {"ct": {"key": "state"}},
                            "right": ["established", "related"],
                        }
                    },
                    {"jump": {"target": "quota_down"}},
                ],
            }
        }
    }

    assert render_command(rule) == (
        "add rule inet capport down ct state ! established,related jump quota_down"
    )


def test_render_regular_chain_has_no_hook() -> None:
    chain = {"add": {"chain": {"family": "inet", "table": "capport", "name": "up"}}}

    assert render_command(chain) == "add chain inet capport up"


def reference_elements(grants: list[Grant]) -> list[str]:
    """Write the element commands one set at a time, every element in one join."""
    sets: dict[str, list[str]] = {
        "allowed4": [],
        "allowed6": [],
        "down4": [],
        "down6": [],
    }
    for grant in grants:
        version = grant.device.ip.version
        timeout = f" timeout {math.ceil(grant.timeout)}s"
        ip = str(grant.device.ip)
        sets[f"allowed{version}"].append(f"{grant.device.mac} . {ip}{timeout}")
        sets[f"down{version}"].append(ip + timeout)
    return [
        f"add element inet capport {name} {{ {', '.join(elements)} }}"
        for name, elements in sets.items()
        if elements
    ]


def test_buffer_elements_span_chunks_unchanged() -> None:
    grants = [
        Grant(fake_device(index), 600 + index % 7)
        for index in range(2 * ELEMENT_CHUNK + 300)
    ]
    grants += [
        Grant(Device(fake_device(index).mac, IPv6Address(f"2001:db8::{index:x}")), 60)
        for index in range(ELEMENT_CHUNK + 1)
    ]

    buffer = lines(install_buffer(SPEC, grants, []))

    assert [line for line in buffer if line.startswith("add element")] == (
        reference_elements(grants)
    )


def test_buffer_ends_with_one_newline() -> None:
    buffer = install_buffer(SPEC, [Grant(A, 60)], [])

    assert buffer.endswith("\n")
    assert not buffer.endswith("\n\n")
