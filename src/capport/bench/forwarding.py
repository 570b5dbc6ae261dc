"""The gateway setups the data-plane benchmark compares, and their ratios. No I/O.

Each round measures every setup once, back to back, so a change in the
machine's load between rounds affects all setups of a round alike. A
setup's figure is the median over rounds of its rate divided by the rate
without any rules in the same round.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from capport.bench.figures import median, ratio

NONE = "none"
ACCEPT = "accept"
CONNTRACK = "conntrack"
CAPPORT = "capport"

ACCEPT_TABLE_NAME = "capbench_accept"
CONNTRACK_TABLE_NAME = "capbench_ct"

# The cost of having any nftables base chain on the forward hook, without
# connection tracking.
ACCEPT_TABLE = f"""\
table inet {ACCEPT_TABLE_NAME} {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        accept
    }}
}}
"""

# Connection tracking and a NAT hook, as capport's table has them, without
# any of capport's rules. The nat chain is what registers the NAT hooks, and
# the `ct state` rule is what enables connection tracking.
CONNTRACK_TABLE = f"""\
table inet {CONNTRACK_TABLE_NAME} {{
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
    }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ct state established,related accept
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class Setup:
    """One configuration of the gateway's nftables rules."""

    key: str
    label: str
    # The ruleset loaded with `nft -f`; None for no rules and for capport's
    # table, which the enforcer installs.
    ruleset: str | None = None


def setups(other_devices: int) -> tuple[Setup, ...]:
    """Return the setups in the order of an odd round; NONE is the reference."""
    return (
        Setup(CAPPORT, f"capport's table, c2 and {other_devices:,} other devices"),
        Setup(NONE, "no nftables rules"),
        Setup(ACCEPT, "one accept rule on the forward hook", ACCEPT_TABLE),
        Setup(CONNTRACK, "connection tracking and NAT hooks only", CONNTRACK_TABLE),
    )


def round_order(all_setups: Sequence[Setup], number: int) -> list[Setup]:
    """Return the setups of round number (from 1): odd rounds forward, even reversed.

    Reversing every other round keeps any setup from always running first
    or always right after the same other one.
    """
    if number % 2:
        return list(all_setups)
    return list(reversed(all_setups))


def removal_batch(table_names: Sequence[str]) -> str:
    """Build an `nft -f` batch that deletes the inet tables, present or not.

    Adding a table before deleting it makes the delete succeed always.
    """
    lines = []
    for name in table_names:
        lines += [f"add table inet {name}", f"delete table inet {name}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class SetupSummary:
    """A setup's rates over all rounds, against the no-rules rates."""

    label: str
    median_rate: float
    median_ratio: float
    min_ratio: float
    max_ratio: float


def summarise(
    rates: dict[str, list[float]], labels: dict[str, str], reference: str = NONE
) -> dict[str, SetupSummary]:
    """Reduce each setup's rates to per-round ratios against reference.

    Raises ValueError when a setup has a different number of rounds than the
    reference, because each ratio needs both rates of one round.
    """
    summaries = {}
    for key, values in rates.items():
        if len(values) != len(rates[reference]):
            raise ValueError(
                f"setup {key} has {len(values)} rounds and {reference} has "
                f"{len(rates[reference])}: each round needs both"
            )
        ratios = [ratio(v, r) for v, r in zip(values, rates[reference], strict=True)]
        finite = [value for value in ratios if not math.isnan(value)]
        summaries[key] = SetupSummary(
            label=labels[key],
            median_rate=median(values),
            median_ratio=median(ratios),
            min_ratio=min(finite, default=math.nan),
            max_ratio=max(finite, default=math.nan),
        )
    return summaries


# Reading what nft prints


def listed_tables(text: str) -> list[str]:
    """Return the "FAMILY NAME" of each table in the output of `nft list tables`."""
    tables = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "table":
            tables.append(f"{words[1]} {words[2]}")
        elif words:
            raise ValueError(f"unexpected line in `nft list tables` output: {line!r}")
    return tables


def set_element_keys(text: str) -> list[str]:
    """Return the keys of the elements in the output of `nft -j list set`.

    A concatenated key such as MAC . address is joined with "/", the form
    of the benchmark's --device arguments.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"`nft -j list set` printed invalid JSON: {error}") from None
    keys = []
    for item in data.get("nftables", []):
        found = item.get("set") if isinstance(item, dict) else None
        for element in (found or {}).get("elem", []):
            keys.append(_element_key(element))
    return keys


def _element_key(element: Any) -> str:
    # An element with a timeout or counter is wrapped as {"elem": {"val": ...}}.
    value = element.get("elem", {}).get("val") if isinstance(element, dict) else None
    if value is None:
        value = element
    if isinstance(value, dict) and "concat" in value:
        return "/".join(str(part) for part in value["concat"])
    return str(value)
