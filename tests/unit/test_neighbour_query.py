"""RTM_GETNEIGH requests and replies, checked against bytes the kernel sent.

The replies were captured on x86-64 (little-endian) from Linux 6.x in a
namespace with a veth interface of index 3 and entries added by
`ip neigh add ... nud reachable` and `... nud stale`.
"""

import errno
import sys
from ipaddress import ip_address

import pytest

from capport.neighbour_query import (
    NeighbourEntry,
    build_request,
    contains_ipv6_neighbour,
    parse_reply,
)

pytestmark = pytest.mark.skipif(
    sys.byteorder != "little", reason="the captured messages are little-endian"
)

INDEX = 3
REQUEST_V4 = bytes.fromhex(
    "240000001e000100070000000000000002000000030000000000000008000100c0000205"
)
REQUEST_V6 = bytes.fromhex(
    "300000001e00010008000000000000000a000000030000000000000014000100"
    "20010db8000000000000000000000005"
)
# 192.0.2.5 at 02:aa:00:00:00:05, REACHABLE, sequence 7.
REPLY_V4 = bytes.fromhex(
    "4c0000001c00000007000000ae5d000002000000030000000200000108000100"
    "c00002050a00020002aa0000000500000800040000000000140003000300000003"
    "0000000300000002000000"
)
# 2001:db8::5 at 02:aa:00:00:00:06, STALE, sequence 8.
REPLY_V6 = bytes.fromhex(
    "580000001c00000008000000ae5d00000a000000030000000400000114000100"
    "20010db80000000000000000000000050a00020002aa0000000600000800040000"
    "0000001400030072170000020000000200000001000000"
)
# No entry for 192.0.2.9: NLMSG_ERROR with -ENOENT, sequence 9.
REPLY_MISSING = bytes.fromhex(
    "380000000200000009000000ae5d0000feffffff240000001e00010009000000"
    "0000000002000000030000000000000008000100c0000209"
)


def test_request_for_ipv4_address() -> None:
    assert build_request(7, ip_address("192.0.2.5"), INDEX) == REQUEST_V4


def test_request_for_ipv6_address() -> None:
    assert build_request(8, ip_address("2001:db8::5"), INDEX) == REQUEST_V6


def test_reply_with_reachable_entry() -> None:
    entry = parse_reply(REPLY_V4, 7)

    assert entry == NeighbourEntry("02:aa:00:00:00:05", 0x02)


def test_reply_with_stale_ipv6_entry() -> None:
    entry = parse_reply(REPLY_V6, 8)

    assert entry == NeighbourEntry("02:aa:00:00:00:06", 0x04)


def test_reply_without_entry_raises_enoent() -> None:
    with pytest.raises(OSError) as raised:
        parse_reply(REPLY_MISSING, 9)

    assert raised.value.errno == errno.ENOENT


def test_reply_to_other_request_is_skipped() -> None:
    assert parse_reply(REPLY_V4, 8) is None


def test_reply_after_stale_one_is_found() -> None:
    entry = parse_reply(REPLY_MISSING + REPLY_V4, 7)

    assert entry is not None
    assert entry.mac == "02:aa:00:00:00:05"


def test_truncated_reply_raises_ebadmsg() -> None:
    with pytest.raises(OSError) as raised:
        parse_reply(REPLY_V4[:-8], 7)

    assert raised.value.errno == errno.EBADMSG


def test_entry_without_link_layer_address_has_empty_mac() -> None:
    # The IPv4 reply with its NDA_LLADDR attribute (12 bytes at offset 36)
    # removed and the length fixed, as the kernel sends an INCOMPLETE entry.
    body = REPLY_V4[4:36] + REPLY_V4[48:]
    reply = (len(body) + 4).to_bytes(4, "little") + body

    entry = parse_reply(reply, 7)

    assert entry == NeighbourEntry("", 0x02)


def test_ipv6_neighbour_message_is_detected() -> None:
    assert contains_ipv6_neighbour(REPLY_V6)


def test_ipv6_neighbour_after_ipv4_is_detected() -> None:
    assert contains_ipv6_neighbour(REPLY_V4 + REPLY_V6)


def test_ipv4_neighbour_message_is_ignored() -> None:
    assert not contains_ipv6_neighbour(REPLY_V4)


def test_error_message_is_ignored() -> None:
    assert not contains_ipv6_neighbour(REPLY_MISSING)


def test_empty_data_has_no_neighbour() -> None:
    assert not contains_ipv6_neighbour(b"")
