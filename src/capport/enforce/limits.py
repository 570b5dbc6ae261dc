"""Per-device download counters, data quotas and rate limits as nftables commands.

Every function here is pure and builds libnftables JSON commands for the
`inet` table that capport.enforce.ruleset creates. Each device gets:

- an element in `down4` (or `down6`), keyed by its IP address, whose counter
  counts the bytes forwarded to it. The forward chain cannot match a MAC on
  packets towards the LAN, because their Ethernet header is built after the
  forward hook, so the download direction is keyed by address alone;
- for each quota, a named quota object `quota-up-...`, `quota-down-...` or
  `quota-total-...` with the `over` flag, referenced from a map keyed like
  the sets (`MAC . IP` for upload, IP for download). The kernel adds each
  packet's length to the object and drops the packet that would take it
  past its limit, and every packet after it (net/netfilter/nft_quota.c), so
  the bytes that pass never exceed the quota;
- for each rate, a named limit object with the `over` flag, referenced the
  same way, which drops what exceeds the rate (policing, not shaping);
- an element in `limited_up4` and `limited_down4` (or the `6` sets) when it
  has any quota or rate. The forward path looks a packet up in these small
  sets once and jumps to the chain with the map rules only on a match, so
  a device without limits costs one lookup per direction instead of three.

Object names are derived from the device, so a document can remove a
device's objects without knowing whether they still exist: it adds a
placeholder object and map element first, then deletes both. The kernel
applies the whole batch or none of it. Elements of many devices go into one
command per set or map, which libnftables processes far faster than one
command per element.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from typing import Any

from capport.enforce.base import (
    NO_QUOTAS_USED,
    DeviceUsage,
    Grant,
    Limits,
    Traffic,
    timeout_seconds,
)
from capport.models import Device, normalise_mac

FAMILY = "inet"

UP = "up"
DOWN = "down"
TOTAL = "total"

# Bucket depth of a rate limit: a tenth of a second of traffic, and at least
# one 64 KiB packet, which is what GRO can hand the forward hook at once.
# With this depth an iperf3 TCP stream through the laboratory gateway
# reached 97 % to 104 % of rates from 1 to 50 Mbit/s (Linux 6.x, veth).
RATE_BURST_SECONDS = 0.1
MIN_RATE_BURST_BYTES = 65536


@dataclass(frozen=True, slots=True)
class MapSpec:
    """One map from a device key to a quota or limit object."""

    name: str
    object_kind: str  # "quota" or "limit"
    object_prefix: str
    keyed_by_mac: bool  # MAC . IP for the upload direction, IP for download


def maps(version: int) -> list[MapSpec]:
    """Return the maps of IP version 4 or 6, in the order the rules check them."""
    return [
        MapSpec(f"quota_up{version}", "quota", "quota-up", True),
        MapSpec(f"quota_total_up{version}", "quota", "quota-total", True),
        MapSpec(f"rate_up{version}", "limit", "rate-up", True),
        MapSpec(f"quota_down{version}", "quota", "quota-down", False),
        MapSpec(f"quota_total_down{version}", "quota", "quota-total", False),
        MapSpec(f"rate_down{version}", "limit", "rate-down", False),
    ]


def down_set(version: int) -> str:
    return f"down{version}"


def limited_set(direction: str, version: int) -> str:
    """Name the set of devices with a limit in direction UP or DOWN."""
    return f"limited_{direction}{version}"


def version_of(device: Device) -> int:
    return 6 if isinstance(device.ip, IPv6Address) else 4


def object_name(prefix: str, device: Device) -> str:
    """Name a device's object, such as `quota-up-020000000011-c000020b`."""
    return f"{prefix}-{device.mac.replace(':', '')}-{device.ip.packed.hex()}"


def rate_burst(rate: int) -> int:
    """Return the bucket depth in bytes for a rate in bytes per second."""
    return max(int(rate * RATE_BURST_SECONDS), MIN_RATE_BURST_BYTES)


# Declarations


def declarations(table: str) -> list[dict[str, Any]]:
    """Build the commands that add the download sets and the limit maps."""
    commands = []
    for version, address in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        commands.append({"add": {"set": _down_set_object(table, version, address)}})
        for direction, limited_key in ((UP, ["ether_addr", address]), (DOWN, address)):
            limited = {
                "family": FAMILY,
                "table": table,
                "name": limited_set(direction, version),
                "type": limited_key,
                "flags": ["timeout"],
            }
            commands.append({"add": {"set": limited}})
        for spec in maps(version):
            key: Any = ["ether_addr", address] if spec.keyed_by_mac else address
            commands.append(
                {
                    "add": {
                        "map": {
                            "family": FAMILY,
                            "table": table,
                            "name": spec.name,
                            "type": key,
                            "map": spec.object_kind,
                            "flags": ["timeout"],
                        }
                    }
                }
            )
    return commands


def _down_set_object(table: str, version: int, address: str) -> dict[str, Any]:
    return {
        "family": FAMILY,
        "table": table,
        "name": down_set(version),
        "type": address,
        "flags": ["timeout"],
        "stmt": [{"counter": None}],
    }


# Granting and revoking

# The object prefixes each device has in the kernel, such as {"quota-down"}.
# None stands for "not known", and then every possible object is removed.
ObjectIndex = Mapping[Device, frozenset[str]]


def object_prefixes(limits: Limits) -> frozenset[str]:
    """Return the prefixes of the objects that limits need."""
    wanted = {
        "quota-up": limits.quota_up,
        "quota-down": limits.quota_down,
        "quota-total": limits.quota_total,
        "rate-up": limits.rate_up,
        "rate-down": limits.rate_down,
    }
    return frozenset(prefix for prefix, value in wanted.items() if value is not None)


NO_LIMITS = Limits()

ALL_PREFIXES = frozenset(
    {"quota-up", "quota-down", "quota-total", "rate-up", "rate-down"}
)


def install_commands(table: str, grants: Iterable[Grant]) -> list[dict[str, Any]]:
    """Build the commands that create devices' counters and limits in a new table."""
    latest = list({grant.device: grant for grant in grants}.values())
    return _create(table, latest)


def grant_commands(
    table: str, grants: Iterable[Grant], existing: ObjectIndex | None = None
) -> list[dict[str, Any]]:
    """Build the commands that (re)create each device's counters and limits.

    existing lists the objects each device has now, so only those are
    removed first. Without it, every object a device could have is removed.
    The download counters restart at zero.
    """
    latest = list({grant.device: grant for grant in grants}.values())
    devices = [grant.device for grant in latest]
    commands = _remove_download_elements(table, devices)
    commands += _remove_objects(table, devices, existing)
    return commands + _create(table, latest)


def revoke_commands(
    table: str, devices: Iterable[Device], existing: ObjectIndex | None = None
) -> list[dict[str, Any]]:
    """Build the commands that remove devices' counters and limits, present or not."""
    devices = list(dict.fromkeys(devices))
    commands = _remove_download_elements(table, devices)
    return commands + _remove_objects(table, devices, existing)


def _create(table: str, grants: list[Grant]) -> list[dict[str, Any]]:
    """Build one add per download set and map, and one per object, for grants."""
    downloads: dict[str, list[Any]] = {}
    for grant in grants:
        device, timeout = grant.device, timeout_seconds(grant.timeout)
        downloads.setdefault(down_set(version_of(device)), []).append(
            _timed(str(device.ip), timeout)
        )
    commands = [_add_element(table, name, items) for name, items in downloads.items()]
    return commands + limit_commands(table, grants)


def limit_commands(table: str, grants: Iterable[Grant]) -> list[dict[str, Any]]:
    """Build the adds of grants' quota and limit objects and of their map elements.

    Devices without limits add nothing, so this stays short when few have any.
    """
    objects: list[dict[str, Any]] = []
    map_elements: dict[str, list[Any]] = {}
    limited: dict[str, list[Any]] = {}
    for grant in grants:
        if grant.limits == NO_LIMITS:
            continue
        device, timeout = grant.device, timeout_seconds(grant.timeout)
        version = version_of(device)
        created = _objects(table, device, grant.limits, grant.used)
        objects += [{"add": {kind: body}} for kind, body in created.values()]
        for direction in _limited_directions(grant.limits):
            member = _timed(_direction_key(device, direction), timeout)
            limited.setdefault(limited_set(direction, version), []).append(member)
        for spec in maps(version):
            name = object_name(spec.object_prefix, device)
            if name in created:
                element = [_timed(_key(device, spec), timeout), name]
                map_elements.setdefault(spec.name, []).append(element)
    commands = objects + [
        _add_element(table, name, items) for name, items in map_elements.items()
    ]
    commands += [_add_element(table, name, items) for name, items in limited.items()]
    return commands


def _limited_directions(limits: Limits) -> list[str]:
    """Return UP and DOWN for the directions that limits apply to.

    A total quota counts both directions, so it limits both.
    """
    directions = []
    if (limits.quota_up, limits.quota_total, limits.rate_up) != (None, None, None):
        directions.append(UP)
    if (limits.quota_down, limits.quota_total, limits.rate_down) != (None, None, None):
        directions.append(DOWN)
    return directions


def _direction_key(device: Device, direction: str) -> Any:
    # Upload packets are matched by MAC and address, download packets by
    # address alone, as in the maps.
    if direction == UP:
        return {"concat": [device.mac, str(device.ip)]}
    return str(device.ip)


def _objects(
    table: str, device: Device, limits: Limits, used: Traffic
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Return the device's quota and limit objects by name, with their kind."""
    wanted = [
        ("quota-up", limits.quota_up, used.up),
        ("quota-down", limits.quota_down, used.down),
        ("quota-total", limits.quota_total, used.total),
    ]
    objects = {}
    for prefix, quota, consumed in wanted:
        if quota is not None:
            name = object_name(prefix, device)
            objects[name] = ("quota", _quota(table, name, quota, consumed))
    for prefix, rate in (("rate-up", limits.rate_up), ("rate-down", limits.rate_down)):
        if rate is not None:
            name = object_name(prefix, device)
            objects[name] = ("limit", _limit(table, name, rate))
    return objects


def _remove_download_elements(
    table: str, devices: list[Device]
) -> list[dict[str, Any]]:
    """Delete devices' download elements; each is added first, so it exists."""
    addresses: dict[str, list[Any]] = {}
    for device in devices:
        addresses.setdefault(down_set(version_of(device)), []).append(str(device.ip))
    commands = []
    for name, items in addresses.items():
        commands.append(_add_element(table, name, items))
        commands.append(_delete_element(table, name, items))
    return commands


def _remove_objects(
    table: str, devices: list[Device], existing: ObjectIndex | None
) -> list[dict[str, Any]]:
    """Delete devices' map elements and objects, whether or not they still exist.

    Each object is added first (an add of an existing object succeeds), and
    so is each map element. An add of an existing map element succeeds only
    with the same object, which the derived names guarantee. The elements
    go before the objects, because the kernel does not delete an object
    that a map element still refers to. A device with any object also
    leaves both limited sets of its IP version.
    """
    placeholders: dict[str, tuple[str, dict[str, Any]]] = {}
    keys: dict[str, list[Any]] = {}
    pairs: dict[str, list[Any]] = {}
    limited: dict[str, list[Any]] = {}
    for device in devices:
        prefixes = (
            ALL_PREFIXES if existing is None else existing.get(device, frozenset())
        )
        if prefixes:
            for direction in (UP, DOWN):
                name = limited_set(direction, version_of(device))
                limited.setdefault(name, []).append(_direction_key(device, direction))
        for spec in maps(version_of(device)):
            if spec.object_prefix not in prefixes:
                continue
            name = object_name(spec.object_prefix, device)
            if spec.object_kind == "quota":
                placeholders[name] = ("quota", _quota(table, name, 1, 0))
            else:
                placeholders[name] = ("limit", _limit(table, name, 1))
            key = _key(device, spec)
            keys.setdefault(spec.name, []).append(key)
            pairs.setdefault(spec.name, []).append([key, name])
    commands = [{"add": {kind: body}} for kind, body in placeholders.values()]
    for name in keys:
        commands.append(_add_element(table, name, pairs[name]))
        commands.append(_delete_element(table, name, keys[name]))
    for name, items in limited.items():
        commands.append(_add_element(table, name, items))
        commands.append(_delete_element(table, name, items))
    for name, (kind, _) in placeholders.items():
        reference = {"family": FAMILY, "table": table, "name": name}
        commands.append({"delete": {kind: reference}})
    return commands


def parse_objects(listing: Any) -> dict[Device, frozenset[str]]:
    """Read which devices have which objects from the output of `list table`."""
    found: dict[Device, set[str]] = {}
    for item in _items(listing):
        for kind in ("quota", "limit"):
            body = item.get(kind)
            if not body or "name" not in body:
                continue
            parsed = _parse_object_name(str(body["name"]))
            if parsed is not None:
                prefix, device = parsed
                found.setdefault(device, set()).add(prefix)
    return {device: frozenset(prefixes) for device, prefixes in found.items()}


def _parse_object_name(name: str) -> tuple[str, Device] | None:
    """Read the prefix and device back from a name that object_name built."""
    prefix = next((p for p in ALL_PREFIXES if name.startswith(p + "-")), "")
    if not prefix:
        return None
    mac_hex, _, ip_hex = name[len(prefix) + 1 :].partition("-")
    try:
        mac = ":".join(mac_hex[i : i + 2] for i in range(0, 12, 2))
        ip = ip_address(bytes.fromhex(ip_hex))
        return prefix, Device(normalise_mac(mac), ip)
    except ValueError:
        return None


def _quota(table: str, name: str, limit: int, used: int) -> dict[str, Any]:
    return {
        "family": FAMILY,
        "table": table,
        "name": name,
        "bytes": limit,
        "used": min(used, limit),
        "inv": True,
    }


def _limit(table: str, name: str, rate: int) -> dict[str, Any]:
    return {
        "family": FAMILY,
        "table": table,
        "name": name,
        "rate": rate,
        "per": "second",
        "rate_unit": "bytes",
        "burst": rate_burst(rate),
        "burst_unit": "bytes",
        "inv": True,
    }


def _key(device: Device, spec: MapSpec) -> Any:
    return _direction_key(device, UP if spec.keyed_by_mac else DOWN)


def _timed(value: Any, timeout: int) -> dict[str, Any]:
    return {"elem": {"val": value, "timeout": timeout}}


def _add_element(table: str, name: str, elements: list[Any]) -> dict[str, Any]:
    body = {"family": FAMILY, "table": table, "name": name, "elem": elements}
    return {"add": {"element": body}}


def _delete_element(table: str, name: str, elements: list[Any]) -> dict[str, Any]:
    body = {"family": FAMILY, "table": table, "name": name, "elem": elements}
    return {"delete": {"element": body}}


# Rules


def upload_rules(version: int) -> list[list[dict[str, Any]]]:
    """Drop a device's packets once its upload quotas or rate are exceeded."""
    address = "ip" if version == 4 else "ip6"
    key = {
        "concat": [
            {"payload": {"protocol": "ether", "field": "saddr"}},
            {"payload": {"protocol": address, "field": "saddr"}},
        ]
    }
    return [
        [_object_lookup(spec, key), {"drop": None}]
        for spec in maps(version)
        if spec.keyed_by_mac
    ]


def download_rules(version: int) -> list[list[dict[str, Any]]]:
    """Drop packets to a device once its download quotas or rate are exceeded."""
    address = "ip" if version == 4 else "ip6"
    key = {"payload": {"protocol": address, "field": "daddr"}}
    return [
        [_object_lookup(spec, key), {"drop": None}]
        for spec in maps(version)
        if not spec.keyed_by_mac
    ]


def _object_lookup(spec: MapSpec, key: Any) -> dict[str, Any]:
    # A device without an element in the map does not match, so the rule
    # applies only to devices with that limit.
    return {spec.object_kind: {"map": {"key": key, "data": f"@{spec.name}"}}}


# Reading the kernel's counters


def parse_usage(listing: Any, up_bytes: dict[Device, int]) -> dict[Device, DeviceUsage]:
    """Read the counters of devices from the JSON output of `list table`.

    up_bytes maps each authorised device to its upload bytes, which the counter
    of its element in the authorised set provides.
    """
    down: dict[str, int] = {}
    quotas: dict[str, int] = {}
    for item in _items(listing):
        found = item.get("set")
        if found and found.get("name") in (down_set(4), down_set(6)):
            for element in found.get("elem", []):
                details = element.get("elem", {}) if isinstance(element, dict) else {}
                value = details.get("val", element)
                counter = details.get("counter") or {}
                down[str(value)] = int(counter.get("bytes", 0))
        quota = item.get("quota")
        if quota and "name" in quota:
            quotas[str(quota["name"])] = int(quota.get("used", 0))
    return combine_usage(up_bytes, down, quotas)


def combine_usage(
    up_bytes: dict[Device, int], down_bytes: dict[str, int], quotas: dict[str, int]
) -> dict[Device, DeviceUsage]:
    """Join each authorised device's counters into its usage.

    down_bytes maps addresses, as libnftables prints them, to the bytes of
    their download counters; a device missing there reads as zero. quotas
    maps quota object names to the bytes they have used.
    """
    usage = {}
    for device, up in up_bytes.items():
        traffic = Traffic(up, down_bytes.get(str(device.ip), 0))
        usage[device] = DeviceUsage(traffic, quotas_used(device, quotas))
    return usage


def quotas_used(device: Device, quotas: dict[str, int]) -> Mapping[str, int]:
    """Return the bytes device's quota objects used, by direction.

    quotas maps quota object names to the bytes they have used. A device
    without quota objects gets the shared NO_QUOTAS_USED, not a dict of its own.
    """
    if not quotas:
        return NO_QUOTAS_USED
    used = {
        direction: quotas[name]
        for direction in (UP, DOWN, TOTAL)
        if (name := object_name(f"quota-{direction}", device)) in quotas
    }
    return used or NO_QUOTAS_USED


def _items(listing: Any) -> list[dict[str, Any]]:
    if not isinstance(listing, dict):
        return []
    return [item for item in listing.get("nftables", []) if isinstance(item, dict)]
