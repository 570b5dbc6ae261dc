"""Reading nft's text listings, checked on output captured from nftables 1.0.6.

nft/table.txt is `nft list table inet capport` of a table loaded with
elements that have and lack timeouts and counters, IPv4 and IPv6
addresses, and quota objects whose byte counts nft prints in kbytes and
mbytes. nft/empty_set.txt is `nft list set` of a set without elements.
"""

import math
from pathlib import Path

import pytest

from capport.enforce.listing import (
    ElementState,
    TableListing,
    parse_address,
    parse_listing,
)
from capport.models import Device

CAPTURED = Path(__file__).parent / "nft"
TABLE = (CAPTURED / "table.txt").read_text()
EMPTY_SET = (CAPTURED / "empty_set.txt").read_text()

AUTHORISED = ("allowed4", "allowed6")
DOWNLOADS = ("down4", "down6")

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")
C = Device.parse("02:00:00:00:00:14", "192.0.2.14")
V6 = Device.parse("02:00:00:00:00:13", "2001:db8:1::13")
LINK_LOCAL = Device.parse("02:00:00:00:00:13", "fe80::13")


def parse_table() -> TableListing:
    return parse_listing(TABLE, AUTHORISED, DOWNLOADS)


def test_listing_reads_counters_and_whole_seconds_left() -> None:
    assert parse_table().authorised[A] == ElementState(3596.0, 7, 532)


def test_listing_reads_days_and_omitted_units() -> None:
    # "expires 1d1h57s988ms": the minutes are zero and left out.
    assert parse_table().authorised[C].remaining == 86400 + 3600 + 57


def test_listing_element_without_timeout_never_expires() -> None:
    assert parse_table().authorised[B] == ElementState(math.inf, 0, 0)


def test_listing_reads_ipv6_elements() -> None:
    authorised = parse_table().authorised

    assert authorised[V6] == ElementState(8.0, 2, 144)
    assert authorised[LINK_LOCAL] == ElementState(596.0, 0, 0)


def test_listing_reads_every_authorised_element_once() -> None:
    # The quota map quota_total_up4 has an element keyed like A, which is
    # not an authorised element.
    assert set(parse_table().authorised) == {A, B, C, V6, LINK_LOCAL}


def test_listing_reads_download_counters_by_address() -> None:
    downloads = parse_table().downloads

    assert downloads == {"192.0.2.11": 4096, "192.0.2.12": 0, "2001:db8:1::13": 80}


def test_listing_reads_quota_units_as_bytes() -> None:
    quotas = parse_table().quotas

    assert quotas["quota-total-020000000011-c000020b"] == 2048
    assert quotas["quota-up-020000000011-c000020b"] == 1234


def test_listing_reads_unused_quota_as_zero() -> None:
    # nft leaves out "used" while a quota has used nothing.
    assert parse_table().quotas["quota-down-020000000011-c000020b"] == 0


def test_listing_of_one_set_reads_only_that_set() -> None:
    listing = parse_listing(TABLE, ("allowed6",))

    assert set(listing.authorised) == {V6, LINK_LOCAL}
    assert listing.downloads == {}


def test_listing_of_empty_set_is_empty() -> None:
    assert parse_listing(EMPTY_SET, ("allowed6",)) == TableListing()


def test_listing_rejects_unreadable_element() -> None:
    broken = TABLE.replace("02:00:00:00:00:12 . 192.0.2.12", "02:00:00:00:00:12 . x")

    with pytest.raises(ValueError, match="read 2 elements of set allowed4"):
        parse_listing(broken, AUTHORISED)


def test_listing_rejects_invalid_address() -> None:
    broken = TABLE.replace("192.0.2.14", "192.0.2.999")

    with pytest.raises(ValueError, match="192.0.2.999"):
        parse_listing(broken, AUTHORISED)


def test_parse_address_reads_both_versions() -> None:
    assert str(parse_address("192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("2001:db8::1")) == "2001:db8::1"
