"""Trusted and blocked MAC addresses and the walled garden, as nftables commands.

Every function here is pure. The sets live in the `inet` table that
capport.enforce.ruleset builds:

- `trusted` and `blocked` (`ether_addr`): the first rules of the
  prerouting and forward chains check them, so a trusted device is never
  captive and a blocked one is never forwarded, whatever the other sets
  hold;
- `garden4` and `garden6` (intervals): networks every device may reach
  before login;
- `garden_hosts4` and `garden_hosts6` (addresses with timeouts): the
  addresses that the walled garden's host names resolved to. Each element
  times out unless the next resolution renews it, so an address a name no
  longer resolves to leaves the garden by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Address, IPv6Network, collapse_addresses
from typing import Any

from capport.enforce.base import IPNetwork, timeout_seconds
from capport.models import IPAddress

FAMILY = "inet"
TRUSTED = "trusted"
BLOCKED = "blocked"


def garden_set(version: int) -> str:
    return f"garden{version}"


def garden_hosts_set(version: int) -> str:
    return f"garden_hosts{version}"


def declarations(table: str) -> list[dict[str, Any]]:
    """Build the commands that add the MAC and walled-garden sets."""
    commands = [
        {"add": {"set": _set(table, TRUSTED, "ether_addr", [])}},
        {"add": {"set": _set(table, BLOCKED, "ether_addr", [])}},
    ]
    for version, address in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        networks = _set(table, garden_set(version), address, ["interval"])
        hosts = _set(table, garden_hosts_set(version), address, ["timeout"])
        commands += [{"add": {"set": networks}}, {"add": {"set": hosts}}]
    return commands


def mac_list_commands(
    table: str, trusted: Iterable[str], blocked: Iterable[str]
) -> list[dict[str, Any]]:
    """Build the commands that replace the contents of both MAC sets."""
    commands = []
    for name, macs in ((TRUSTED, trusted), (BLOCKED, blocked)):
        commands.append({"flush": {"set": _reference(table, name)}})
        elements = sorted(set(macs))
        if elements:
            commands.append(_add_elements(table, name, elements))
    return commands


def garden_commands(
    table: str, networks: Iterable[IPNetwork], addresses: dict[IPAddress, float]
) -> list[dict[str, Any]]:
    """Build the commands that replace the walled garden's networks and addresses.

    addresses maps each address to the seconds it stays in the garden.
    """
    commands: list[dict[str, Any]] = []
    by_version: dict[int, list[Any]] = {4: [], 6: []}
    for network in collapse(networks):
        version = 4 if isinstance(network, IPv4Network) else 6
        prefix = {
            "prefix": {"addr": str(network.network_address), "len": network.prefixlen}
        }
        by_version[version].append(prefix)
    timed: dict[int, list[Any]] = {4: [], 6: []}
    for address, seconds in addresses.items():
        version = 6 if isinstance(address, IPv6Address) else 4
        element = {"elem": {"val": str(address), "timeout": timeout_seconds(seconds)}}
        timed[version].append(element)
    for version in (4, 6):
        commands.append({"flush": {"set": _reference(table, garden_set(version))}})
        commands.append(
            {"flush": {"set": _reference(table, garden_hosts_set(version))}}
        )
        if by_version[version]:
            commands.append(
                _add_elements(table, garden_set(version), by_version[version])
            )
        if timed[version]:
            commands.append(
                _add_elements(table, garden_hosts_set(version), timed[version])
            )
    return commands


def collapse(networks: Iterable[IPNetwork]) -> list[IPNetwork]:
    """Merge overlapping networks, which an interval set rejects as a conflict."""
    networks = list(networks)
    v4 = [n for n in networks if isinstance(n, IPv4Network)]
    v6 = [n for n in networks if isinstance(n, IPv6Network)]
    return [*collapse_addresses(v4), *collapse_addresses(v6)]


# Rule fragments


def ether_source_in(name: str) -> dict[str, Any]:
    left = {"payload": {"protocol": "ether", "field": "saddr"}}
    return {"match": {"op": "==", "left": left, "right": f"@{name}"}}


def garden_destination_rules(
    prefix: list[dict[str, Any]], verdict: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """Build one rule per garden set: prefix, destination in the set, verdict."""
    rules = []
    for version, protocol in ((4, "ip"), (6, "ip6")):
        left = {"payload": {"protocol": protocol, "field": "daddr"}}
        for name in (garden_set(version), garden_hosts_set(version)):
            match = {"match": {"op": "==", "left": left, "right": f"@{name}"}}
            rules.append([*prefix, match, verdict])
    return rules


def _set(table: str, name: str, key: str, flags: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"family": FAMILY, "table": table, "name": name, "type": key}
    if flags:
        body["flags"] = flags
    return body


def _reference(table: str, name: str) -> dict[str, Any]:
    return {"family": FAMILY, "table": table, "name": name}


def _add_elements(table: str, name: str, elements: list[Any]) -> dict[str, Any]:
    body = {"family": FAMILY, "table": table, "name": name, "elem": elements}
    return {"add": {"element": body}}
