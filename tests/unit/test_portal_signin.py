"""Signing in on the portal with a user, a voucher or click-through details."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from ipaddress import ip_address
from typing import Any

import pytest
from test_portal import (
    CAPTURED_URL,
    CLIENT_IP,
    CLIENT_MAC,
    PORTAL_ADDRESS,
    TITLE,
    Portal,
    csrf_token_in,
    start_portal,
)

from capport.auth.entitlement import Method
from capport.auth.passwords import hash_password
from capport.auth.records import NewVoucher, User
from capport.auth.vouchers import code_digest, normalise_code
from capport.config import Config, parse_config
from capport.neighbours import MemoryNeighbours
from capport.portal.signin import WRONG_CODE, WRONG_PASSWORD

PASSWORD = "harbour-lights-7"
CODE = "K7QXM-3HNPD"
SECOND_IP = "192.0.2.12"
SECOND_MAC = "02:00:00:00:00:12"
# Hashed once: argon2id takes tens of milliseconds by design.
PASSWORD_HASH = hash_password(PASSWORD)


def make_config(**auth: Any) -> Config:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": PORTAL_ADDRESS, "title": TITLE},
            "auth": {"methods": ["click-through", "voucher", "user"], **auth},
        }
    )


def open_portal(config: Config) -> Iterator[Portal]:
    neighbours = MemoryNeighbours(
        {ip_address(CLIENT_IP): CLIENT_MAC, ip_address(SECOND_IP): SECOND_MAC}
    )
    for portal in start_portal(config, neighbours):
        portal.call(
            portal.store.add_user,
            User("alice", PASSWORD_HASH, time.time()),
        )
        yield portal


@pytest.fixture
def portal() -> Iterator[Portal]:
    yield from open_portal(make_config())


def add_voucher(portal: Portal, code: str = CODE, **limits: Any) -> int:
    bare = normalise_code(code)
    assert bare is not None
    new = NewVoucher(code_digest(bare), 3600.0, **limits)
    (voucher,) = portal.call(portal.store.add_vouchers, [new], time.time())
    return int(voucher.id)


def post(portal: Portal, path: str, **fields: str) -> Any:
    return portal.client.post(path, data={"csrf": portal.csrf_token(), **fields})


def as_second_device(portal: Portal) -> None:
    """Send the next requests from SECOND_IP, as another device would."""
    portal.client._transport.client = (SECOND_IP, 50001)  # type: ignore[attr-defined]


# The page


def test_splash_shows_each_configured_form(portal: Portal) -> None:
    html = portal.client.get("/").text
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    assert actions == ["/accept", "/voucher", "/login"]
    assert 'type="password"' in html


def test_unconfigured_method_is_404() -> None:
    for portal in open_portal(make_config(methods=["click-through"])):
        response = post(portal, "/login", username="alice", password=PASSWORD)
        assert response.status_code == 404
        assert portal.active_sessions() == []


def test_accept_disabled_when_not_configured() -> None:
    for portal in open_portal(make_config(methods=["voucher"])):
        assert 'action="/accept"' not in portal.client.get("/").text
        assert post(portal, "/accept").status_code == 404


# Users


def test_user_login_grants_session(portal: Portal) -> None:
    response = post(portal, "/login", username="Alice", password=PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/status"
    (session,) = portal.active_sessions()
    assert session.method == Method.USER
    assert session.subject == "alice"


def test_status_names_the_account(portal: Portal) -> None:
    post(portal, "/login", username="alice", password=PASSWORD)
    assert "the account alice" in portal.client.get("/status").text


def test_user_login_returns_to_captured_url(portal: Portal) -> None:
    token = portal.signer.sign(CAPTURED_URL)
    response = post(portal, "/login", username="alice", password=PASSWORD, t=token)
    assert response.headers["location"] == CAPTURED_URL


def test_wrong_password_is_403(portal: Portal) -> None:
    response = post(portal, "/login", username="alice", password="wrong")
    assert response.status_code == 403
    assert WRONG_PASSWORD in response.text
    assert portal.active_sessions() == []


def test_unknown_user_gets_same_message(portal: Portal) -> None:
    known = post(portal, "/login", username="alice", password="wrong")
    unknown = post(portal, "/login", username="mallory", password="wrong")
    assert unknown.status_code == known.status_code
    assert WRONG_PASSWORD in unknown.text


def test_failed_login_keeps_name_not_password(portal: Portal) -> None:
    response = post(portal, "/login", username="alice", password="s3cr3t-typo")
    assert 'value="alice"' in response.text
    assert "s3cr3t-typo" not in response.text


def test_repeated_failures_get_429(portal: Portal) -> None:
    for _ in range(5):
        assert post(portal, "/login", username="alice", password="x").status_code == 403
    response = post(portal, "/login", username="alice", password=PASSWORD)
    assert response.status_code == 429
    seconds = int(response.headers["retry-after"])
    assert 0 < seconds <= 60
    assert f"Try again in {seconds} seconds" in response.text
    assert portal.active_sessions() == []


def test_rate_limit_is_per_address(portal: Portal) -> None:
    for _ in range(5):
        post(portal, "/login", username="alice", password="x")
    as_second_device(portal)
    response = post(portal, "/login", username="alice", password=PASSWORD)
    assert response.status_code == 303


def test_voucher_failures_count_too(portal: Portal) -> None:
    for _ in range(5):
        assert post(portal, "/voucher", code="XXXXX-XXXXX").status_code == 403
    assert post(portal, "/voucher", code="XXXXX-XXXXX").status_code == 429


# Vouchers


def test_voucher_grants_session(portal: Portal) -> None:
    voucher_id = add_voucher(portal)
    response = post(portal, "/voucher", code=CODE)
    assert response.status_code == 303
    (session,) = portal.active_sessions()
    assert session.method == Method.VOUCHER
    assert session.subject == str(voucher_id)


@pytest.mark.parametrize("typed", ["k7qxm3hnpd", " k7qxm - 3hnpd ", "K7QXM 3HNPD"])
def test_voucher_accepts_typed_forms(portal: Portal, typed: str) -> None:
    add_voucher(portal)
    assert post(portal, "/voucher", code=typed).status_code == 303


def test_unknown_voucher_is_403(portal: Portal) -> None:
    add_voucher(portal)
    response = post(portal, "/voucher", code="K7QXM-3HNPE")
    assert response.status_code == 403
    assert WRONG_CODE in response.text
    assert CODE not in response.text


def test_used_up_voucher_is_refused(portal: Portal) -> None:
    add_voucher(portal, max_uses=1)
    assert post(portal, "/voucher", code=CODE).status_code == 303
    as_second_device(portal)
    response = post(portal, "/voucher", code=CODE)
    assert response.status_code == 403
    assert "used up" in response.text
    assert len(portal.active_sessions()) == 1


def test_voucher_device_limit_rejects(portal: Portal) -> None:
    add_voucher(portal, max_devices=1)
    assert post(portal, "/voucher", code=CODE).status_code == 303
    as_second_device(portal)
    response = post(portal, "/voucher", code=CODE)
    assert response.status_code == 409
    assert "already in use on 1 device" in response.text
    assert len(portal.active_sessions()) == 1


def test_device_limit_can_end_oldest() -> None:
    for portal in open_portal(make_config(device_limit_policy="end-oldest")):
        portal.gateway.set_device_limit_policy("end-oldest")
        add_voucher(portal, max_devices=1)
        assert post(portal, "/voucher", code=CODE).status_code == 303
        as_second_device(portal)
        assert post(portal, "/voucher", code=CODE).status_code == 303
        (session,) = portal.active_sessions()
        assert str(session.device.ip) == SECOND_IP
        assert set(portal.enforcer.devices) == {session.device}


def test_user_device_limit_from_config() -> None:
    for portal in open_portal(make_config(user_max_devices=1)):
        assert (
            post(portal, "/login", username="alice", password=PASSWORD).status_code
            == 303
        )
        as_second_device(portal)
        response = post(portal, "/login", username="alice", password=PASSWORD)
        assert response.status_code == 409
        assert "This account is already in use" in response.text


# Click-through details


def test_required_details_are_stored(tmp_path: Any) -> None:
    config = make_config(methods=["click-through"], details="required")
    for portal in open_portal(config):
        response = post(portal, "/accept", name="Ada", email="ada@example.com")
        assert response.status_code == 303
        (session,) = portal.active_sessions()
        assert session.method == Method.CLICK_THROUGH


def test_missing_required_details_are_400() -> None:
    config = make_config(methods=["click-through"], details="required")
    for portal in open_portal(config):
        response = post(portal, "/accept", name="Ada", email="ada@")
        assert response.status_code == 400
        assert 'value="Ada"' in response.text
        assert "name@example.com" in response.text
        assert portal.active_sessions() == []


def test_optional_details_may_be_empty() -> None:
    config = make_config(methods=["click-through"], details="optional")
    for portal in open_portal(config):
        assert "(optional)" in portal.client.get("/").text
        assert post(portal, "/accept", name="", email="").status_code == 303


def test_sign_in_posts_need_csrf(portal: Portal) -> None:
    add_voucher(portal)
    response = portal.client.post("/voucher", data={"code": CODE})
    assert response.status_code == 403
    assert portal.active_sessions() == []


# Secrets in logs


def test_no_secret_is_logged(portal: Portal, caplog: pytest.LogCaptureFixture) -> None:
    add_voucher(portal, max_uses=1)
    caplog.set_level(logging.DEBUG)
    post(portal, "/login", username="alice", password="wrong-" + PASSWORD)
    post(portal, "/login", username="alice", password=PASSWORD)
    portal.client.post(
        "/logout", data={"csrf": csrf_token_in(portal.client.get("/status").text)}
    )
    post(portal, "/voucher", code="K7QXM-3HNPE")
    post(portal, "/voucher", code=CODE.lower())
    as_second_device(portal)
    post(portal, "/voucher", code=CODE)
    assert caplog.records, "nothing was logged, so the check proves nothing"
    text = caplog.text.upper()
    for secret in (PASSWORD, "wrong-" + PASSWORD, CODE, "K7QXM3HNPD", "K7QXM-3HNPE"):
        assert secret.upper() not in text
    assert "3HNP" not in text
