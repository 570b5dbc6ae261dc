"""The data-plane benchmark's setups, round order, ratios and nft output parsing."""

import math

import pytest

from capport.bench import forwarding
from capport.bench.forwarding import (
    ACCEPT,
    CAPPORT,
    CONNTRACK,
    NONE,
    listed_tables,
    removal_batch,
    round_order,
    set_element_keys,
    summarise,
)

# `nft -j list set inet capport allowed4` with two elements, captured from
# nftables 1.0.6 (Debian 12) in a network namespace.
LISTED_SET = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": '
    '"Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", '
    '"name": "allowed4", "table": "capport", "type": ["ether_addr", '
    '"ipv4_addr"], "handle": 1, "flags": ["timeout"], "elem": [{"elem": '
    '{"val": {"concat": ["02:00:00:00:00:12", "192.0.2.12"]}, "timeout": 3600, '
    '"expires": 3599, "counter": {"packets": 0, "bytes": 0}}}, {"elem": {"val": '
    '{"concat": ["02:00:00:00:00:13", "192.0.2.13"]}, "timeout": 3600, '
    '"expires": 3599, "counter": {"packets": 0, "bytes": 0}}}], "stmt": '
    '[{"counter": null}]}}]}'
)
# `nft list tables` from the same namespace.
LISTED_TABLES = "table inet capport\ntable inet capbench_ct\n"

LABELS = {NONE: "none", CAPPORT: "capport"}


def test_setups_cover_reference_and_diagnosis() -> None:
    keys = [setup.key for setup in forwarding.setups(10_000)]

    assert sorted(keys) == sorted([CAPPORT, NONE, ACCEPT, CONNTRACK])


def test_setups_name_device_count() -> None:
    (capport,) = [s for s in forwarding.setups(10_000) if s.key == CAPPORT]

    assert "10,000" in capport.label


def test_only_helper_setups_carry_rulesets() -> None:
    rulesets = {setup.key: setup.ruleset for setup in forwarding.setups(1)}

    assert rulesets[NONE] is None
    assert rulesets[CAPPORT] is None
    assert "accept" in (rulesets[ACCEPT] or "")
    assert "ct state" in (rulesets[CONNTRACK] or "")


def test_round_order_reverses_even_rounds() -> None:
    all_setups = forwarding.setups(1)

    assert round_order(all_setups, 1) == list(all_setups)
    assert round_order(all_setups, 2) == list(reversed(all_setups))


def test_rounds_meet_at_capport_table() -> None:
    # An even round ends where the next odd round starts, so capport's table
    # is installed once every two rounds.
    all_setups = forwarding.setups(1)

    assert round_order(all_setups, 2)[-1] == round_order(all_setups, 3)[0]
    assert round_order(all_setups, 3)[0].key == CAPPORT


def test_removal_batch_adds_before_deleting() -> None:
    batch = removal_batch(["capport", "capbench_ct"])

    assert batch.splitlines() == [
        "add table inet capport",
        "delete table inet capport",
        "add table inet capbench_ct",
        "delete table inet capbench_ct",
    ]


def test_summarise_takes_median_of_round_ratios() -> None:
    rates = {NONE: [10.0, 20.0, 10.0], CAPPORT: [9.0, 19.0, 5.0]}

    summary = summarise(rates, LABELS)[CAPPORT]

    assert summary.median_ratio == pytest.approx(0.9)
    assert summary.min_ratio == pytest.approx(0.5)
    assert summary.max_ratio == pytest.approx(0.95)
    assert summary.median_rate == 9.0


def test_summarise_reference_ratio_is_one() -> None:
    summary = summarise({NONE: [4.0, 5.0], CAPPORT: [4.0, 5.0]}, LABELS)[NONE]

    assert summary.median_ratio == 1.0


def test_summarise_rejects_missing_round() -> None:
    with pytest.raises(ValueError, match="each round needs both"):
        summarise({NONE: [1.0, 2.0], CAPPORT: [1.0]}, LABELS)


def test_summarise_zero_reference_fails_ratio() -> None:
    summary = summarise({NONE: [0.0], CAPPORT: [1.0]}, LABELS)[CAPPORT]

    assert math.isnan(summary.median_ratio)
    assert math.isnan(summary.min_ratio)


def test_listed_tables_reads_family_and_name() -> None:
    assert listed_tables(LISTED_TABLES) == ["inet capport", "inet capbench_ct"]


def test_listed_tables_of_empty_ruleset() -> None:
    assert listed_tables("") == []


def test_listed_tables_rejects_other_output() -> None:
    with pytest.raises(ValueError, match="unexpected line"):
        listed_tables("Error: Could not process rule\n")


def test_set_element_keys_joins_concatenations() -> None:
    assert set_element_keys(LISTED_SET) == [
        "02:00:00:00:00:12/192.0.2.12",
        "02:00:00:00:00:13/192.0.2.13",
    ]


def test_set_element_keys_of_bare_elements() -> None:
    listing = '{"nftables": [{"set": {"name": "down4", "elem": ["192.0.2.12"]}}]}'

    assert set_element_keys(listing) == ["192.0.2.12"]


def test_set_element_keys_rejects_invalid_json() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        set_element_keys("Error: No such file or directory")
