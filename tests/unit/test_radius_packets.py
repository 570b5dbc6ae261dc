"""Building RADIUS requests and reading replies, with no network."""

import hashlib
from ipaddress import IPv4Address

import pytest
from pyrad.packet import AccessAccept, AuthPacket

from capport.auth.radius.packets import (
    MIN_INTERIM_INTERVAL,
    AccountingRecord,
    NasIdentity,
    access_request,
    accounting_request,
    chap_response,
    load_dictionary,
    read_access_accept,
    split_gigawords,
    station_id,
    terminate_cause,
)
from capport.models import Device, EndReason

SECRET = b"unit-test-secret"
DEVICE = Device.parse("02:00:00:00:00:11", "192.0.2.11")
NAS = NasIdentity("gw-1", IPv4Address("192.0.2.1"), "02-00-00-00-00-01")
CHALLENGE = bytes(range(17))


def accept_with(**attributes: object) -> AuthPacket:
    """Build an Access-Accept as a server would and decode it again."""
    request = access_request(SECRET, "u", "p", DEVICE, NAS, "pap", CHALLENGE)
    request.RequestPacket()
    reply = request.CreateReply()
    reply.code = AccessAccept
    for name, value in attributes.items():
        reply[name.replace("_", "-")] = value
    raw = reply.ReplyPacket()
    return request.CreateReply(packet=raw)


def test_station_id_format() -> None:
    assert station_id("02:0a:00:00:00:11") == "02-0A-00-00-00-11"


def test_split_gigawords() -> None:
    assert split_gigawords(5 * 2**32 + 7) == (7, 5)
    assert split_gigawords(2**32 - 1) == (2**32 - 1, 0)


def test_chap_response_is_id_and_md5() -> None:
    value = chap_response(7, b"secret", b"challenge")
    assert value[0] == 7
    assert value[1:] == hashlib.md5(b"\x07secretchallenge").digest()


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        (EndReason.EXPIRED, "Session-Timeout"),
        (EndReason.REVOKED, "Admin-Reset"),
        (EndReason.LOGOUT, "User-Request"),
        ("idle", "Idle-Timeout"),
        (EndReason.REPLACED, "NAS-Request"),
        (None, "NAS-Request"),
    ],
)
def test_terminate_cause_mapping(reason: str | None, cause: str) -> None:
    assert terminate_cause(reason) == cause


def test_pap_request_hides_password() -> None:
    request = access_request(SECRET, "alice", "pw-123", DEVICE, NAS, "pap", CHALLENGE)
    raw = request.RequestPacket()
    assert b"pw-123" not in raw
    assert request.PwDecrypt(request["User-Password"][0]) == "pw-123"


def test_chap_request_uses_challenge() -> None:
    request = access_request(SECRET, "alice", "pw", DEVICE, NAS, "chap", CHALLENGE)
    assert request["CHAP-Challenge"] == [CHALLENGE[1:]]
    assert "User-Password" not in request
    assert request.VerifyChapPasswd("pw")


def test_request_has_message_authenticator() -> None:
    request = access_request(SECRET, "alice", "pw", DEVICE, NAS, "pap", CHALLENGE)
    decoded = AuthPacket(
        secret=SECRET, dict=load_dictionary(), packet=request.RequestPacket()
    )
    assert decoded.verify_message_authenticator()


@pytest.mark.parametrize(
    ("username", "password"), [("", "pw"), ("u", ""), ("u", "p" * 129)]
)
def test_unsendable_credentials_rejected(username: str, password: str) -> None:
    with pytest.raises(ValueError):
        access_request(SECRET, username, password, DEVICE, NAS, "pap", CHALLENGE)


def test_accept_limits_read() -> None:
    reply = accept_with(
        Session_Timeout=900,
        Idle_Timeout=120,
        WISPr_Bandwidth_Max_Up=256000,
        WISPr_Bandwidth_Max_Down=1024000,
        ChilliSpot_Max_Total_Octets=10_000_000,
        Class=b"gold",
    )
    limits = read_access_accept(reply)
    assert limits.session_timeout == 900
    assert limits.idle_timeout == 120
    assert limits.bandwidth_max_up == 256000
    assert limits.bandwidth_max_down == 1024000
    assert limits.max_total_octets == 10_000_000
    assert limits.classes == (b"gold",)


def test_zero_session_timeout_means_unset() -> None:
    assert read_access_accept(accept_with(Session_Timeout=0)).session_timeout is None


def test_interim_interval_from_accept() -> None:
    limits = read_access_accept(accept_with(Acct_Interim_Interval=120))
    assert limits.interim_interval == 120


def test_interim_interval_floor() -> None:
    limits = read_access_accept(accept_with(Acct_Interim_Interval=5))
    assert limits.interim_interval == MIN_INTERIM_INTERVAL


def test_start_record_has_no_usage() -> None:
    record = AccountingRecord("Start", "S1", "alice", DEVICE)
    request = accounting_request(SECRET, record, NAS)
    assert request["Acct-Status-Type"] == ["Start"]
    assert "Acct-Input-Octets" not in request
    assert "Acct-Terminate-Cause" not in request


def test_stop_record_splits_octets() -> None:
    record = AccountingRecord(
        "Stop",
        "S1",
        "alice",
        DEVICE,
        session_time=61,
        input_octets=2 * 2**32 + 3,
        output_octets=4,
        terminate_cause="Admin-Reset",
        classes=(b"a", b"b"),
    )
    request = accounting_request(SECRET, record, NAS)
    assert request["Acct-Input-Octets"] == [3]
    assert request["Acct-Input-Gigawords"] == [2]
    assert request["Acct-Output-Octets"] == [4]
    assert request["Acct-Session-Time"] == [61]
    assert request["Acct-Terminate-Cause"] == ["Admin-Reset"]
    assert request["Class"] == [b"a", b"b"]


def test_ipv6_device_has_no_framed_ip() -> None:
    device = Device.parse("02:00:00:00:00:11", "2001:db8::11")
    record = AccountingRecord("Start", "S1", "alice", device)
    assert "Framed-IP-Address" not in accounting_request(SECRET, record, NAS)
