"""The libnftables JSON documents the gateway sends, and parsing of set listings.

Every function here is pure: it builds a document as dicts, ready for
`Nftables.json_cmd`, or reads one that libnftables returned. The forms were
checked against libnftables 1.0.6 (Debian 12) by loading them into a network
namespace and listing the result with `nft list ruleset`.

The ruleset is one `inet` table:

- sets `allowed4` (`ether_addr . ipv4_addr`) and `allowed6`
  (`ether_addr . ipv6_addr`) of authorised devices, each element with a
  timeout and its own counter of the bytes the device sent;
- the download sets, quota maps and rate-limit maps of
  capport.enforce.limits, and the trusted, blocked and walled-garden sets
  of capport.enforce.lists;
- `prerouting` (nat): trusted devices and traffic to the walled garden
  pass; TCP port 80 of an unauthorised device to an address that is not
  the gateway's own is redirected to the responder;
- `input`: from the LAN only DHCP, DNS, the portal, the responder, ICMP
  echo, IPv6 neighbour discovery and the configured extra ports are accepted;
- `forward`: jumps to `from_lan` or `to_lan`, so a packet is matched
  against the rules of its own direction only;
- `from_lan`: blocked MACs are dropped and trusted ones accepted; a device
  with limits jumps to `upload_limits`, which drops what is over a quota or
  rate; an authorised device is accepted by one set lookup, and so is
  traffic to the walled garden; the rest is rejected at once;
- `to_lan`: only replies of tracked connections pass, a device with limits
  jumps to `download_limits`, and the replies to an authorised device are
  counted by one set lookup.

Every packet an authorised device forwards crosses `forward` and one of
the two direction chains. nftables pays for each rule it evaluates, so the
common case comes first, and the rules for the MAC lists and for limits
are left out of the direction chains while nothing needs them (see
OptionalRules). Then an authorised device costs one set lookup each way:
the allowed set out, the download counter in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from capport.config import Config
from capport.enforce import limits, lists
from capport.enforce.base import Grant, timeout_seconds
from capport.enforce.listing import ElementState, parse_address
from capport.models import Device

Document = dict[str, list[dict[str, Any]]]

FAMILY = "inet"
ALLOWED4 = "allowed4"
ALLOWED6 = "allowed6"

# Server ports of DHCPv4, DHCPv6 and DNS.
DHCP_PORT = 67
DHCPV6_PORT = 547
DNS_PORT = 53
HTTP_PORT = 80

# Base chain priorities by number: libnftables 1.0.6 reads "prio" only as an
# integer and, given a name such as "dstnat", silently creates a regular
# chain that no hook calls.
DSTNAT = -100
FILTER = 0

# ICMPv6 types without which IPv6 on the LAN does not work (RFC 4861):
# a device solicits routers and resolves and confirms the gateway's address.
_NEIGHBOUR_DISCOVERY = [
    "nd-router-solicit",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "echo-request",
]


@dataclass(frozen=True, slots=True)
class RulesetSpec:
    """The values the ruleset is built from."""

    table: str
    lan_interface: str
    portal_address: IPv4Address
    portal_port: int
    responder_port: int
    allow_tcp_ports: tuple[int, ...] = ()
    allow_udp_ports: tuple[int, ...] = ()
    # The portal's HTTPS port, when TLS is configured.
    portal_tls_port: int | None = None
    portal_address6: IPv6Address | None = None

    @classmethod
    def from_config(cls, config: Config) -> RulesetSpec:
        return cls(
            table=config.firewall.table,
            lan_interface=config.gateway.interface,
            portal_address=config.portal.address,
            portal_port=config.portal.port,
            responder_port=config.responder.port,
            allow_tcp_ports=config.firewall.allow_tcp_ports,
            allow_udp_ports=config.firewall.allow_udp_ports,
            portal_tls_port=config.tls.port if config.tls.enabled else None,
            portal_address6=config.portal.address6,
        )


class OptionalRules:
    """Rule groups of the direction chains that a packet only needs sometimes.

    The enforcer adds a group to the chains in the same transaction as the
    first element that needs it, so no element is ever in the kernel
    without its rules.
    """

    # The blocked and trusted rules, while either list contains a MAC.
    MAC_LISTS = "mac_lists"
    # The jumps to the quota and rate chains, from the first grant with a
    # limit until the table is installed again.
    LIMITS = "limits"
    ALL = frozenset({MAC_LISTS, LIMITS})


# Whole documents


def install_document(
    spec: RulesetSpec,
    grants: Iterable[Grant],
    contents: Iterable[dict[str, Any]] = (),
    optional: frozenset[str] = OptionalRules.ALL,
) -> Document:
    """Build the transaction that replaces the table and loads grants.

    contents are further commands that fill the new table's sets, such as
    the trusted MACs, and optional names the OptionalRules groups they need.
    The kernel applies the whole batch or none of it.
    """
    grants = list(grants)
    commands = table_commands(spec, optional)
    for name, elements in _timed_elements_by_set(grants).items():
        commands.append({"add": {"element": _element(spec.table, name, elements)}})
    commands += limits.install_commands(spec.table, grants)
    commands += contents
    return {"nftables": commands}


def table_commands(
    spec: RulesetSpec, optional: frozenset[str] = OptionalRules.ALL
) -> list[dict[str, Any]]:
    """Build the commands that replace the table with an empty one and its rules.

    optional names the OptionalRules groups to include. The table is added
    before it is deleted, so the delete cannot fail when no table exists.
    """
    commands: list[dict[str, Any]] = [
        {"add": {"table": _table(spec.table)}},
        {"delete": {"table": _table(spec.table)}},
        {"add": {"table": _table(spec.table)}},
        {"add": {"set": _set(spec.table, ALLOWED4, "ipv4_addr")}},
        {"add": {"set": _set(spec.table, ALLOWED6, "ipv6_addr")}},
        *limits.declarations(spec.table),
        *lists.declarations(spec.table),
        {"add": {"chain": _base_chain(spec.table, "prerouting", "nat", DSTNAT)}},
        {"add": {"chain": _base_chain(spec.table, "input", "filter", FILTER)}},
        {"add": {"chain": _base_chain(spec.table, "forward", "filter", FILTER)}},
    ]
    # Regular chains exist before the rules that jump to them.
    chains = _chain_rules(spec, optional)
    commands += [
        {"add": {"chain": _regular_chain(spec.table, name)}}
        for name in chains
        if name not in ("prerouting", "input", "forward")
    ]
    for chain, rules in chains.items():
        commands += [{"add": {"rule": _rule(spec.table, chain, r)}} for r in rules]
    return commands


def grant_document(
    table: str, grants: Iterable[Grant], existing: limits.ObjectIndex | None = None
) -> Document:
    """Build the transaction that authorises grants with their timeouts.

    Whether `add element` updates the timeout of an existing element depends
    on the kernel: Linux 6.18 updates it, and older kernels may keep the old
    one. So each element is added, deleted and added again. The first add
    makes the delete succeed whether or not the device was authorised, and
    the last add sets the new timeout. The element's counters restart at 0,
    and so do the device's download counter, quotas and rate limits.
    existing is passed on to limits.grant_commands.
    """
    grants = list(grants)
    commands: list[dict[str, Any]] = []
    keys = _keys_by_set(grant.device for grant in grants)
    for name, elements in _timed_elements_by_set(grants).items():
        element = _element(table, name, elements)
        commands.append({"add": {"element": element}})
        commands.append({"delete": {"element": _element(table, name, keys[name])}})
        commands.append({"add": {"element": element}})
    commands += limits.grant_commands(table, grants, existing)
    return {"nftables": commands}


def revoke_document(
    table: str,
    devices: Iterable[Device],
    existing: limits.ObjectIndex | None = None,
) -> Document:
    """Build the transaction that removes devices from the authorised sets.

    Each element is added and then deleted in the same batch, so revoking a
    device that is not (or no longer) authorised succeeds. existing is
    passed on to limits.revoke_commands.
    """
    devices = list(devices)
    commands: list[dict[str, Any]] = []
    for name, elements in _keys_by_set(devices).items():
        element = _element(table, name, elements)
        commands.append({"add": {"element": element}})
        commands.append({"delete": {"element": element}})
    commands += limits.revoke_commands(table, devices, existing)
    return {"nftables": commands}


def direction_chain_commands(table: str, optional: frozenset[str]) -> list[Any]:
    """Build the commands that replace the direction chains' rules.

    Flushing a chain and adding its rules in one transaction leaves no
    moment in which a packet is evaluated against a half-built chain.
    """
    commands: list[dict[str, Any]] = []
    for chain, rules in (
        (FROM_LAN, from_lan_rules(optional)),
        (TO_LAN, to_lan_rules(optional)),
    ):
        reference = {"family": FAMILY, "table": table, "name": chain}
        commands.append({"flush": {"chain": reference}})
        commands += [{"add": {"rule": _rule(table, chain, r)}} for r in rules]
    return commands


def uninstall_document(table: str) -> Document:
    """Build the transaction that deletes the table, present or not."""
    return {
        "nftables": [
            {"add": {"table": _table(table)}},
            {"delete": {"table": _table(table)}},
        ]
    }


def list_set_document(table: str, name: str) -> Document:
    return {
        "nftables": [
            {"list": {"set": {"family": FAMILY, "table": table, "name": name}}}
        ]
    }


def list_table_document(table: str) -> Document:
    return {"nftables": [{"list": {"table": _table(table)}}]}


def list_tables_document() -> Document:
    return {"nftables": [{"list": {"tables": {"family": FAMILY}}}]}


# Reading listings


def has_table(listing: Any, table: str) -> bool:
    """Tell whether the output of `list tables` contains the inet table."""
    for item in _items(listing):
        found = item.get("table")
        if found and found.get("family") == FAMILY and found.get("name") == table:
            return True
    return False


def parse_set_elements(listing: Any) -> dict[Device, ElementState]:
    """Read the elements of the authorised sets in a `list set` or `list table` output.

    libnftables 1.0.6 reports `expires` in whole seconds; an element without
    a timeout has math.inf remaining. Elements that have expired but are not
    yet garbage-collected are left out by the kernel.
    """
    states: dict[Device, ElementState] = {}
    for item in _items(listing):
        found = item.get("set") or {}
        if found.get("name") not in (ALLOWED4, ALLOWED6):
            continue
        for element in found.get("elem", []):
            device, state = _parse_element(element)
            states[device] = state
    return states


def _items(listing: Any) -> list[dict[str, Any]]:
    if not isinstance(listing, dict):
        return []
    items = listing.get("nftables", [])
    return [item for item in items if isinstance(item, dict)]


def _parse_element(element: Any) -> tuple[Device, ElementState]:
    # An element with a timeout or a counter is wrapped as {"elem": {...}};
    # a bare one is just its value.
    details = element.get("elem", {}) if isinstance(element, dict) else {}
    value = details.get("val", element)
    try:
        mac, ip = value["concat"]
        device = Device(str(mac), parse_address(ip))
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"unexpected set element {element!r}") from error
    counter = details.get("counter") or {}
    remaining = float(details["expires"]) if "expires" in details else math.inf
    return device, ElementState(
        remaining=remaining,
        packets=int(counter.get("packets", 0)),
        bytes=int(counter.get("bytes", 0)),
    )


# Rules


def prerouting_rules(spec: RulesetSpec) -> list[list[dict[str, Any]]]:
    """Redirect port 80 of unauthorised devices to the responder.

    Trusted devices and connections to the walled garden are left alone, as
    an accept in a nat chain only ends that chain. The set lookup is
    negated, and a negated lookup does not touch the element's counter, so
    each forwarded packet is counted once, in the forward chain.
    `fib daddr type != local` leaves requests to the gateway's own
    addresses (the portal on port 80) alone.
    """
    lan = _iifname(spec.lan_interface)
    rules = [[lan, lists.ether_source_in(lists.TRUSTED), _accept()]]
    rules += lists.garden_destination_rules([lan], _accept())
    for address, name in (("ip", ALLOWED4), ("ip6", ALLOWED6)):
        rules.append(
            [
                _iifname(spec.lan_interface),
                _match(_payload("tcp", "dport"), HTTP_PORT),
                _match(_fib_daddr_type(), "local", op="!="),
                _match(_device_key(address), f"@{name}", op="!="),
                {"redirect": {"port": spec.responder_port}},
            ]
        )
    return rules


def input_rules(spec: RulesetSpec) -> list[list[dict[str, Any]]]:
    """Accept the services a device needs before login; reject the rest."""
    udp_ports = _port_set(DNS_PORT, DHCP_PORT, DHCPV6_PORT, *spec.allow_udp_ports)
    tcp_ports = _port_set(DNS_PORT, spec.responder_port, *spec.allow_tcp_ports)
    portals = [("ip", str(spec.portal_address))]
    if spec.portal_address6 is not None:
        portals.append(("ip6", str(spec.portal_address6)))
    return [
        [_iifname(spec.lan_interface, op="!="), _accept()],
        [_match(_ct_state(), ["established", "related"], op="in"), _accept()],
        [_match(_payload("udp", "dport"), udp_ports), _accept()],
        [_match(_payload("tcp", "dport"), tcp_ports), _accept()],
        *(
            [
                _match(_payload(protocol, "daddr"), address),
                _match(_payload("tcp", "dport"), _portal_ports(spec)),
                _accept(),
            ]
            for protocol, address in portals
        ),
        [_match(_payload("icmp", "type"), "echo-request"), _accept()],
        [
            _match(_payload("icmpv6", "type"), {"set": _NEIGHBOUR_DISCOVERY}),
            _accept(),
        ],
        [_match(_meta("l4proto"), "tcp"), _reject_tcp()],
        [_reject_icmpx()],
    ]


def _portal_ports(spec: RulesetSpec) -> int | dict[str, list[int]]:
    if spec.portal_tls_port is None:
        return spec.portal_port
    return _port_set(spec.portal_port, spec.portal_tls_port)


FROM_LAN = "from_lan"
TO_LAN = "to_lan"
UPLOAD_LIMITS = "upload_limits"
DOWNLOAD_LIMITS = "download_limits"


def _chain_rules(
    spec: RulesetSpec, optional: frozenset[str]
) -> dict[str, list[list[dict[str, Any]]]]:
    """Return the rules of every chain, by chain name."""
    return {
        "prerouting": prerouting_rules(spec),
        "input": input_rules(spec),
        "forward": forward_rules(spec),
        FROM_LAN: from_lan_rules(optional),
        TO_LAN: to_lan_rules(optional),
        UPLOAD_LIMITS: limits.upload_rules(4) + limits.upload_rules(6),
        DOWNLOAD_LIMITS: limits.download_rules(4) + limits.download_rules(6),
    }


def forward_rules(spec: RulesetSpec) -> list[list[dict[str, Any]]]:
    """Send each forwarded packet to the chain of its direction.

    A packet from the LAN to the LAN takes the first rule. Packets that
    neither come from nor go to the LAN pass by the chain's policy.
    """
    return [
        [_iifname(spec.lan_interface), _jump(FROM_LAN)],
        [_match(_meta("oifname"), spec.lan_interface), _jump(TO_LAN)],
    ]


def from_lan_rules(
    optional: frozenset[str] = OptionalRules.ALL,
) -> list[list[dict[str, Any]]]:
    """Forward authorised devices; reject the others at once.

    A TCP reset or an ICMP administratively-prohibited error makes the
    device's connection attempt fail at once instead of timing out. The
    allowed sets count what they accept, so a packet that a limit drops is
    not counted.
    """
    rules = []
    if OptionalRules.MAC_LISTS in optional:
        rules += [
            [lists.ether_source_in(lists.BLOCKED), {"drop": None}],
            [lists.ether_source_in(lists.TRUSTED), _accept()],
        ]
    for address, version, allowed in (("ip", 4, ALLOWED4), ("ip6", 6, ALLOWED6)):
        if OptionalRules.LIMITS in optional:
            limited = f"@{limits.limited_set(limits.UP, version)}"
            rules.append([_match(_device_key(address), limited), _jump(UPLOAD_LIMITS)])
        rules.append([_match(_device_key(address), f"@{allowed}"), _accept()])
    rules += lists.garden_destination_rules([], _accept())
    rules += [
        [_match(_meta("l4proto"), "tcp"), _reject_tcp()],
        [_reject_icmpx()],
    ]
    return rules


def to_lan_rules(
    optional: frozenset[str] = OptionalRules.ALL,
) -> list[list[dict[str, Any]]]:
    """Pass replies towards the LAN, counting and limiting them per device.

    Packets towards a device cannot be matched by its MAC, because their
    outgoing Ethernet header is built after the forward hook, so this
    direction is counted and limited by address. Only replies pass, so a
    device whose conntrack entries were deleted on revocation receives
    nothing more from outside. Dropping the rest first also keeps packets
    that would be dropped anyway out of the quotas.
    """
    not_replies = _match(_ct_state(), ["established", "related"], op="!")
    rules = [[not_replies, {"drop": None}]]
    for address, version in (("ip", 4), ("ip6", 6)):
        destination = _payload(address, "daddr")
        if OptionalRules.LIMITS in optional:
            limited = f"@{limits.limited_set(limits.DOWN, version)}"
            rules.append([_match(destination, limited), _jump(DOWNLOAD_LIMITS)])
        counted = f"@{limits.down_set(version)}"
        rules.append([_match(destination, counted), _accept()])
    rules.append([_accept()])
    return rules


# Objects and expressions


def _table(table: str) -> dict[str, Any]:
    return {"family": FAMILY, "name": table}


def _set(table: str, name: str, address_type: str) -> dict[str, Any]:
    # The counter statement on the set gives every element its own counter.
    return {
        "family": FAMILY,
        "table": table,
        "name": name,
        "type": ["ether_addr", address_type],
        "flags": ["timeout"],
        "stmt": [{"counter": None}],
    }


def _base_chain(table: str, name: str, kind: str, priority: int) -> dict[str, Any]:
    return {
        "family": FAMILY,
        "table": table,
        "name": name,
        "type": kind,
        "hook": name,
        "prio": priority,
        "policy": "accept",
    }


def _regular_chain(table: str, name: str) -> dict[str, Any]:
    return {"family": FAMILY, "table": table, "name": name}


def _rule(table: str, chain: str, expr: list[dict[str, Any]]) -> dict[str, Any]:
    return {"family": FAMILY, "table": table, "chain": chain, "expr": expr}


def _element(table: str, name: str, elements: list[Any]) -> dict[str, Any]:
    return {"family": FAMILY, "table": table, "name": name, "elem": elements}


def _set_name(device: Device) -> str:
    return ALLOWED6 if isinstance(device.ip, IPv6Address) else ALLOWED4


def _key(device: Device) -> dict[str, Any]:
    return {"concat": [device.mac, str(device.ip)]}


def _keys_by_set(devices: Iterable[Device]) -> dict[str, list[Any]]:
    """Group devices into the set of their address family, once each."""
    elements: dict[str, list[Any]] = {}
    for device in dict.fromkeys(devices):
        elements.setdefault(_set_name(device), []).append(_key(device))
    return elements


def _timed_elements_by_set(grants: Iterable[Grant]) -> dict[str, list[Any]]:
    """Group grants into the set of their address family; the last grant wins."""
    latest = {grant.device: grant for grant in grants}
    elements: dict[str, list[Any]] = {}
    for device, grant in latest.items():
        timeout = timeout_seconds(grant.timeout)
        element = {"elem": {"val": _key(device), "timeout": timeout}}
        elements.setdefault(_set_name(device), []).append(element)
    return elements


def _port_set(*ports: int) -> dict[str, list[int]]:
    return {"set": sorted(set(ports))}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _iifname(interface: str, op: str = "==") -> dict[str, Any]:
    return _match(_meta("iifname"), interface, op=op)


def _ct_state() -> dict[str, Any]:
    return {"ct": {"key": "state"}}


def _fib_daddr_type() -> dict[str, Any]:
    return {"fib": {"result": "type", "flags": ["daddr"]}}


def _device_key(address_protocol: str) -> dict[str, Any]:
    """Build `ether saddr . ip saddr` (or `ip6 saddr`), the sets' key."""
    return {
        "concat": [
            _payload("ether", "saddr"),
            _payload(address_protocol, "saddr"),
        ]
    }


def _accept() -> dict[str, Any]:
    return {"accept": None}


def _jump(chain: str) -> dict[str, Any]:
    return {"jump": {"target": chain}}


def _reject_tcp() -> dict[str, Any]:
    return {"reject": {"type": "tcp reset"}}


def _reject_icmpx() -> dict[str, Any]:
    return {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
