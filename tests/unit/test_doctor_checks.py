"""The pure parts of `capport doctor`: the report, /proc/net tables and checks."""

from __future__ import annotations

import datetime
import resource
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from capport.config import Config, parse_config
from capport.doctor.checks import certificate_validity, check_file_limit, check_store
from capport.doctor.report import Check, Status, has_failure, render, summary
from capport.doctor.sockets import (
    TCP_LISTEN,
    UDP_BOUND,
    BoundSocket,
    bound,
    parse_table,
    reaches,
)

NOW = datetime.datetime(2026, 12, 4, 16, 0, tzinfo=datetime.UTC)
LAN = IPv4Address("192.0.2.1")

# The first columns of lines as Linux 6.1 writes them: 192.168.0.1:53 bound,
# 0.0.0.0:67 bound, and a connected socket.
UDP_TABLE = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt
  12: 0100A8C0:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000
  13: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000
  14: 0100007F:9C40 0100007F:0035 01 00000000:00000000 00:00000000 00000000
"""
UDP6_TABLE = """\
  sl  local_address                         remote_address                        st
   1: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07
   2: 0000000000000000FFFF00000100A8C0:0043 00000000000000000000000000000000:0000 07
"""


def config(**sections: dict[str, object]) -> Config:
    document: dict[str, dict[str, object]] = {
        "gateway": {"interface": "lan0"},
        "portal": {"address": "192.0.2.1"},
    }
    document.update(sections)
    return parse_config(document)


# The report


def test_render_aligns_and_adds_fix() -> None:
    text = render(
        [Check.ok("ports", "free"), Check.fail("forwarding", "off", "sysctl -w x=1")]
    )
    assert text.splitlines() == [
        "ok    ports       free",
        "fail  forwarding  off",
        "                  fix: sysctl -w x=1",
    ]


def test_summary_counts() -> None:
    checks = [Check.ok("a", ""), Check.warn("b", "", "f"), Check.warn("c", "", "f")]
    assert summary(checks) == "1 ok, 2 warnings, 0 failures"


def test_failure_detected() -> None:
    assert has_failure([Check.ok("a", ""), Check.fail("b", "", "f")])
    assert not has_failure([Check.ok("a", ""), Check.warn("b", "", "f")])


# /proc/net tables


def test_udp_table_bound_sockets() -> None:
    assert parse_table(UDP_TABLE, UDP_BOUND) == [
        BoundSocket(IPv4Address("192.168.0.1"), 53),
        BoundSocket(IPv4Address("0.0.0.0"), 67),
    ]


def test_udp6_table_addresses() -> None:
    found = parse_table(UDP6_TABLE, UDP_BOUND)
    assert found[0] == BoundSocket(IPv6Address("::"), 53)
    assert found[1] == BoundSocket(IPv6Address("::ffff:192.168.0.1"), 67)


def test_listen_state_selects_tcp() -> None:
    assert parse_table(UDP_TABLE, TCP_LISTEN) == []


def test_bound_reads_both_families(tmp_path: Path) -> None:
    (tmp_path / "udp").write_text(UDP_TABLE)
    (tmp_path / "udp6").write_text(UDP6_TABLE)
    assert len(bound("udp", 53, root=tmp_path)) == 2


def test_bound_missing_table(tmp_path: Path) -> None:
    assert bound("tcp", 53, root=tmp_path) == []


@pytest.mark.parametrize(
    ("address", "expected"),
    [("0.0.0.0", True), ("192.0.2.1", True), ("::", True),
     ("::ffff:192.0.2.1", True), ("127.0.0.1", False), ("192.0.2.9", False)],
)  # fmt: skip
def test_reaches_lan_address(address: str, expected: bool) -> None:
    assert reaches([BoundSocket(ip_address(address), 53)], LAN) is expected


# Certificates


def certificate(
    not_before: datetime.datetime, not_after: datetime.datetime, name: str
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .sign(key, hashes.SHA256())
    )


def validity(
    days_before: float, days_after: float, hostname: str = "portal.lab"
) -> Check:
    made = certificate(
        NOW - datetime.timedelta(days=days_before),
        NOW + datetime.timedelta(days=days_after),
        "portal.lab",
    )
    return certificate_validity(made, hostname, NOW)


def test_certificate_valid() -> None:
    check = validity(1, 200)
    assert check.status is Status.OK
    assert "2027-06-22" in check.detail


def test_certificate_expiring_soon_warns() -> None:
    check = validity(300, 10)
    assert check.status is Status.WARN
    assert "expires in 10 days" in check.detail


def test_certificate_expired_fails() -> None:
    check = validity(300, -1)
    assert check.status is Status.FAIL
    assert "expired" in check.detail


def test_certificate_not_yet_valid_fails() -> None:
    assert validity(-2, 100).status is Status.FAIL


def test_certificate_other_hostname_fails() -> None:
    check = validity(1, 200, hostname="portal.example.net")
    assert check.status is Status.FAIL
    assert "portal.example.net" in check.detail


# Store and open files


def test_store_writable_directory(tmp_path: Path) -> None:
    check = check_store(config(store={"path": str(tmp_path / "capport.db")}))
    assert check.status is Status.OK


def test_store_directory_created_later(tmp_path: Path) -> None:
    check = check_store(config(store={"path": str(tmp_path / "new" / "capport.db")}))
    assert check.status is Status.OK
    assert "created" in check.detail


def test_store_under_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    check = check_store(config(store={"path": str(tmp_path / "file" / "capport.db")}))
    assert check.status is Status.FAIL
    assert "not a directory" in check.detail


def test_file_limit_enough() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    small = config(
        responder={"max_connections": 1},
        portal={"address": "192.0.2.1", "max_connections": 1},
    )
    if soft < 1026:
        pytest.skip(f"the soft open-file limit {soft} is below the test's need")
    assert check_file_limit(small).status is Status.OK


def test_file_limit_above_hard_warns() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the hard open-file limit is unlimited")
    huge = config(responder={"max_connections": hard + 1})
    check = check_file_limit(huge)
    assert check.status is Status.WARN
    assert "LimitNOFILE" in check.fix


def test_render_indents_multiline_detail() -> None:
    text = render(
        [Check.fail("configuration", "invalid:\n  portal: missing", "fix it")]
    )
    assert text.splitlines() == [
        "fail  configuration  invalid:",
        "                     portal: missing",
        "                     fix: fix it",
    ]
