"""The whole gateway in the laboratory: the 511, the login and who gets through.

Every test starts and ends with both clients captive on the shared
laboratory. A test that logs a client in revokes its access at the end.
"""

from __future__ import annotations

import errno
import time

import pytest
from clients import (
    CURL_COULDNT_CONNECT,
    PORTAL_URL,
    CurlFailed,
    capport,
    clients_json,
    connect,
    curl,
    header_names,
    is_captive,
    is_online,
    log_in,
    open_splash,
    post_form,
    revoke_quietly,
    send_udp,
    signed_in,
    status_form,
)

from capport.lab import Lab
from capport.lab.flow import parse_page
from capport.lab.origin import TCP_GREETING
from capport.lab.topology import ORIGIN_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

# The origin echoes the path of /x/... back as text/plain.
REQUESTED_URL = "http://origin.lab/x/requested?page=2"
FOREIGN_ORIGIN = "Origin: http://evil.example"
# Browsers send an opaque origin for a POST from a sandboxed frame or a
# data: URL.
OPAQUE_ORIGIN = "Origin: null"

# ICMP destination unreachable with code 13, communication administratively
# prohibited, is what `reject with icmpx admin-prohibited` sends for IPv4.
ICMP_DEST_UNREACH = 3
ICMP_ADMIN_PROHIBITED = 13

# A refusal by the gateway arrives in well under this time; a silent drop
# would take the whole timeout.
REFUSAL_SECONDS = 0.5


# The 511


def test_captive_get_gets_511(lab: Lab) -> None:
    response = curl(lab, "c1", REQUESTED_URL)
    assert response.status == 511
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.header("cache-control") == "no-store"


def test_511_sets_no_cookie_or_auth_challenge(lab: Lab) -> None:
    names = header_names(curl(lab, "c1", REQUESTED_URL))
    assert "set-cookie" not in names
    assert "www-authenticate" not in names
    assert "location" not in names


def test_511_links_and_refreshes_to_portal(lab: Lab) -> None:
    response = curl(lab, "c1", REQUESTED_URL)
    refresh, links, _ = parse_page(response.body, REQUESTED_URL)
    assert refresh is not None
    assert refresh.startswith(f"{PORTAL_URL}?t=")
    assert links == [refresh]


def test_portal_link_returns_to_requested_url(lab: Lab) -> None:
    try:
        splash = open_splash(lab, "c1", REQUESTED_URL)
        accepted = post_form(lab, "c1", splash.form)
        assert accepted.status == 303
        assert accepted.header("location") == REQUESTED_URL
        page = curl(lab, "c1", REQUESTED_URL)
        assert page.status == 200
        assert page.body == "/x/requested\n"
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_accept_without_token_goes_to_status(lab: Lab) -> None:
    splash = open_splash(lab, "c1")
    fields = {name: value for name, value in splash.form.fields.items() if name != "t"}
    try:
        accepted = curl(lab, "c1", splash.form.action, form=fields)
        assert accepted.status == 303
        assert accepted.header("location") == "/status"
    finally:
        revoke_quietly(lab, lab.macs["c1"])


# Return addresses the gateway did not capture


@pytest.mark.parametrize(
    "return_value",
    [
        "//evil.example/",
        "javascript:alert(document.domain)",
        "http://origin.lab/\r\nLocation: http://evil.example/",
    ],
    ids=["scheme-relative", "javascript", "crlf"],
)
def test_forged_return_address_rejected(lab: Lab, return_value: str) -> None:
    splash = open_splash(lab, "c1")
    try:
        response = post_form(lab, "c1", splash.form, t=return_value)
        assert response.status == 400
        assert "location" not in header_names(response)
        assert "evil.example" not in response.body
        assert "javascript:" not in response.body
        assert clients_json(lab) == []
        assert is_captive(lab, "c1")
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_forged_return_address_in_link_rejected(lab: Lab) -> None:
    response = curl(lab, "c1", f"{PORTAL_URL}?t=//evil.example/")
    _, links, forms = parse_page(response.body, PORTAL_URL)
    assert response.status == 400
    assert "evil.example" not in response.body
    assert links == []
    assert "t" not in forms[0].fields


# Cross-origin POSTs


@pytest.mark.parametrize("with_csrf", [False, True], ids=["no-csrf", "csrf"])
def test_foreign_origin_logout_rejected(lab: Lab, with_csrf: bool) -> None:
    with signed_in(lab, "c1"):
        form = status_form(lab, "c1")
        fields = form.fields if with_csrf else {}
        response = curl(lab, "c1", form.action, form=fields, headers=[FOREIGN_ORIGIN])
        assert response.status == 403
        assert is_online(lab, "c1")
        assert [row["mac"] for row in clients_json(lab)] == [lab.macs["c1"]]


@pytest.mark.parametrize("with_csrf", [False, True], ids=["no-csrf", "csrf"])
def test_foreign_origin_accept_rejected(lab: Lab, with_csrf: bool) -> None:
    splash = open_splash(lab, "c1")
    fields = splash.form.fields if with_csrf else {}
    try:
        response = curl(
            lab, "c1", splash.form.action, form=fields, headers=[FOREIGN_ORIGIN]
        )
        assert response.status == 403
        assert clients_json(lab) == []
        assert is_captive(lab, "c1")
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_opaque_origin_accept_rejected(lab: Lab) -> None:
    splash = open_splash(lab, "c1")
    try:
        response = post_form(lab, "c1", splash.form, headers=[OPAQUE_ORIGIN])
        assert response.status == 403
        assert clients_json(lab) == []
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_logout_without_csrf_rejected(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        form = status_form(lab, "c1")
        response = curl(lab, "c1", form.action, form={})
        assert response.status == 403
        assert is_online(lab, "c1")


def test_logout_from_status_page_ends_access(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        form = status_form(lab, "c1")
        response = post_form(lab, "c1", form)
        assert response.status == 200
        assert "You are signed out" in response.body
        assert is_captive(lab, "c1")


# Who gets through


def test_accepted_client_reaches_origin(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        assert is_online(lab, "c1")


def test_accepted_client_reaches_tls_port(lab: Lab) -> None:
    with signed_in(lab, "c1"), connect(lab, "c1", 443) as sock:
        assert sock.recv(len(TCP_GREETING) + 1) == TCP_GREETING


def test_other_client_stays_captive_for_http(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        assert curl(lab, "c2", ORIGIN_URL).status == 511


def test_other_client_tcp_refused(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            connect(lab, "c2", 443)
        assert time.monotonic() - started < REFUSAL_SECONDS


def test_other_client_udp_refused(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        refusal = send_udp(lab, "c2")
        assert refusal.errno == errno.EHOSTUNREACH
        assert refusal.icmp_type == ICMP_DEST_UNREACH
        assert refusal.icmp_code == ICMP_ADMIN_PROHIBITED


# Traffic other than plain HTTP before login


def test_captive_tls_port_refused_at_once(lab: Lab) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        connect(lab, "c1", 443)
    assert time.monotonic() - started < REFUSAL_SECONDS


def test_captive_https_not_intercepted(lab: Lab) -> None:
    # With no TLS interception, curl fails to connect at all rather than
    # meeting a certificate it cannot verify (exit status 60).
    started = time.monotonic()
    with pytest.raises(CurlFailed) as failure:
        curl(lab, "c1", "https://origin.lab/")
    assert failure.value.exit_status == CURL_COULDNT_CONNECT
    assert time.monotonic() - started < 1.0


def test_captive_udp_gets_admin_prohibited(lab: Lab) -> None:
    refusal = send_udp(lab, "c1")
    assert refusal.errno == errno.EHOSTUNREACH
    assert refusal.icmp_type == ICMP_DEST_UNREACH
    assert refusal.icmp_code == ICMP_ADMIN_PROHIBITED
    assert refusal.seconds < REFUSAL_SECONDS


# The command line


def test_clients_lists_logged_in_device(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        rows = clients_json(lab)
        assert [(row["mac"], row["ip"]) for row in rows] == [
            (lab.macs["c1"], lab.addresses["c1"])
        ]


def test_clients_table_shows_whole_mac_in_80_columns(lab: Lab) -> None:
    with signed_in(lab, "c1"):
        result = capport("clients", "--socket", str(lab.control_socket), columns=80)
        assert result.returncode == 0, result.stderr
        assert lab.macs["c1"] in result.stdout
        assert lab.addresses["c1"] in result.stdout
        assert "1 authorised device(s)." in result.stdout


def test_revoke_command_makes_device_captive(lab: Lab) -> None:
    log_in(lab, "c1")
    try:
        mac = lab.macs["c1"]
        result = capport("revoke", mac, "--socket", str(lab.control_socket))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Revoked {mac} at {lab.addresses['c1']} ")
        assert clients_json(lab) == []
        assert is_captive(lab, "c1")
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_revoke_unknown_mac_fails(lab: Lab) -> None:
    mac = "02:00:00:00:00:99"
    result = capport("revoke", mac, "--socket", str(lab.control_socket))
    assert result.returncode == 1
    assert f"no authorised device has MAC address {mac}" in result.stderr
