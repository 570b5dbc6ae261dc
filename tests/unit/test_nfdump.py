"""Reading the kernel's nfnetlink replies to set element and object dumps.

Each nft/dump_*.hex file contains the buffers a Linux 6.18 kernel sent in
reply to one dump, one buffer per line in hex, from a table loaded with
elements that have and lack timeouts and counters, IPv4 and IPv6
addresses, and quota objects, used and unused.
"""

import errno
import struct
from pathlib import Path

import pytest

from capport.enforce import nfdump
from capport.enforce.nfdump import DumpError, DumpReply, SetElement

CAPTURED = Path(__file__).parent / "nft"


def captured(name: str) -> list[bytes]:
    text = (CAPTURED / f"dump_{name}.hex").read_text()
    return [bytes.fromhex(line) for line in text.split()]


def read_capture(name: str) -> list[SetElement]:
    elements: list[SetElement] = []
    feed(name, lambda payload: nfdump.read_element_list(payload, elements.append))
    return elements


def feed(name: str, read) -> None:
    buffers = captured(name)
    sequence = struct.unpack_from("=I", buffers[0], 8)[0]
    reply = DumpReply(sequence, f"dumping {name}", read)
    for buffer in buffers:
        reply.feed(buffer)
    assert reply.done


def message(kind: int, sequence: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, sequence, 0) + payload


def test_dump_reads_key_counter_and_time_left() -> None:
    elements = {e.key: e for e in read_capture("allowed4")}

    mac_then_address = bytes.fromhex("0200000000110000c000020b")
    element = elements[mac_then_address]
    assert (element.packets, element.bytes) == (7, 532)
    assert element.expires_ms is not None
    assert 3_590_000 < element.expires_ms <= 3_600_000


def test_dump_element_without_timeout_has_no_expiry() -> None:
    elements = {e.key: e for e in read_capture("allowed4")}

    key = bytes.fromhex("0200000000120000c000020c")
    assert elements[key] == SetElement(key, 0, 0, None)


def test_dump_reads_every_element_once() -> None:
    assert len(read_capture("allowed4")) == 3
    assert len(read_capture("allowed6")) == 2


def test_dump_reads_ipv6_keys_whole() -> None:
    keys = {e.key for e in read_capture("allowed6")}

    assert bytes.fromhex("020000000013000020010db8000100000000000000000013") in keys


def test_dump_of_download_set_keys_by_address() -> None:
    elements = {e.key: e.bytes for e in read_capture("down4")}

    assert elements == {bytes.fromhex("c000020b"): 4096, bytes.fromhex("c000020c"): 0}


def test_dump_reads_used_quota_bytes_by_name() -> None:
    quotas: dict[str, int] = {}
    feed("quotas", lambda payload: quotas.update([nfdump.read_quota(payload)]))

    assert quotas == {
        "quota-total-020000000011-c000020b": 2048,
        "quota-up-020000000011-c000020b": 1234,
        "quota-down-020000000011-c000020b": 0,
    }


def test_reply_error_names_the_dump_and_the_cause() -> None:
    reply = DumpReply(7, "dumping set allowed4", lambda payload: None)
    error = struct.pack("=i", -errno.ENOENT) + bytes(16)

    with pytest.raises(DumpError, match="dumping set allowed4: the table or set does"):
        reply.feed(message(nfdump.NLMSG_ERROR, 7, error))


def test_reply_skips_messages_of_an_earlier_dump() -> None:
    items: list[bytes] = []
    reply = DumpReply(8, "dumping set allowed4", items.append)
    stale = captured("allowed4")[0]

    reply.feed(stale)
    reply.feed(message(nfdump.NLMSG_DONE, 8, struct.pack("=i", 0)))

    assert reply.done
    assert items == []


def test_reply_marks_an_interrupted_dump_incomplete() -> None:
    reply = DumpReply(3, "dumping set allowed4", lambda payload: None)
    empty = struct.pack("=BBH", 1, 0, 0)

    reply.feed(message(0x0A0C, 3, empty, flags=nfdump.NLM_F_DUMP_INTR))
    reply.feed(message(nfdump.NLMSG_DONE, 3, struct.pack("=i", 0)))

    assert reply.done
    assert not reply.complete


def test_truncated_attribute_ends_the_element() -> None:
    # An attribute whose length is under its own header is not followed.
    items: list[SetElement] = []
    payload = struct.pack("=BBH", 1, 0, 0) + struct.pack("=HH", 2, 3)

    nfdump.read_element_list(payload, items.append)

    assert items == []
