"""The login form with RADIUS: an in-memory password service over a real Gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

import pytest
from starlette.testclient import TestClient
from test_portal import (
    CAPTURED_URL,
    CLIENT_IP,
    CLIENT_MAC,
    PORTAL_ADDRESS,
    SECRET,
    TOKEN_SECRET,
    csrf_token_in,
)

from capport.auth.entitlement import Entitlement, Method
from capport.auth.passwords import hash_password
from capport.auth.records import User
from capport.config import Config, parse_config
from capport.enforce.base import MemoryEnforcer
from capport.errors import RadiusTimeout
from capport.gateway import Gateway
from capport.models import Device, Session
from capport.neighbours import MemoryNeighbours
from capport.portal import create_portal_app
from capport.portal.signin import SERVICE_UNAVAILABLE, WRONG_PASSWORD
from capport.store import SQLiteStore
from capport.tokens import TokenSigner

USERNAME = "radius-user"
PASSWORD = "correct horse"
LOCAL_PASSWORD = "local-secret-9"
RADIUS_DURATION = 600.0


@dataclass
class MemoryRadius:
    """A PasswordService that accepts one user, or raises while down is true."""

    down: bool = False
    checked: list[tuple[str, Device]] = field(default_factory=list)

    async def authenticate(
        self, username: str, password: str, device: Device, default_duration: float
    ) -> Entitlement | None:
        self.checked.append((username, device))
        if self.down:
            raise RadiusTimeout("no RADIUS server replied at 127.0.0.1:1812")
        if (username, password) != (USERNAME, PASSWORD):
            return None
        return Entitlement(Method.RADIUS, RADIUS_DURATION, subject=username)


@dataclass
class RadiusPortal:
    client: TestClient
    gateway: Gateway
    store: SQLiteStore
    radius: MemoryRadius
    signer: TokenSigner

    def call(self, function: Any, *args: Any) -> Any:
        assert self.client.portal is not None
        return self.client.portal.call(function, *args)

    def sessions(self) -> list[Session]:
        return list(self.call(self.store.active_sessions))

    def log_in(self, **fields: str) -> Any:
        csrf = csrf_token_in(self.client.get("/").text)
        return self.client.post("/login", data={"csrf": csrf, **fields})


def make_config(methods: list[str]) -> Config:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": PORTAL_ADDRESS},
            "auth": {"methods": methods},
            "radius": {"servers": [{"address": "127.0.0.1", "secret": "unused"}]},
        }
    )


def open_portal(methods: list[str]) -> Iterator[RadiusPortal]:
    store = SQLiteStore(":memory:")
    neighbours = MemoryNeighbours({ip_address(CLIENT_IP): CLIENT_MAC})
    gateway = Gateway(store, MemoryEnforcer(), neighbours, session_duration=3600.0)
    signer = TokenSigner(TOKEN_SECRET, lifetime=900.0)
    radius = MemoryRadius()
    app = create_portal_app(gateway, signer, make_config(methods), SECRET, radius)
    with TestClient(app, client=(CLIENT_IP, 50000), follow_redirects=False) as client:
        portal = RadiusPortal(client, gateway, store, radius, signer)
        portal.call(store.open)
        portal.call(gateway.start)
        try:
            yield portal
        finally:
            portal.call(store.close)


@pytest.fixture
def portal() -> Iterator[RadiusPortal]:
    yield from open_portal(["click-through", "radius"])


def test_splash_shows_login_form(portal: RadiusPortal) -> None:
    html = portal.client.get("/").text
    assert '<form method="post" action="/login"' in html
    assert 'name="password"' in html


def test_login_form_shown_once_with_users() -> None:
    for portal in open_portal(["user", "radius"]):
        html = portal.client.get("/").text
        assert html.count('action="/login"') == 1


def test_radius_login_grants_session(portal: RadiusPortal) -> None:
    response = portal.log_in(username=USERNAME, password=PASSWORD)
    assert response.status_code == 303
    (session,) = portal.sessions()
    assert session.method == Method.RADIUS
    assert session.subject == USERNAME
    assert session.expires_at - session.started_at == pytest.approx(RADIUS_DURATION)


def test_radius_login_returns_to_captured_url(portal: RadiusPortal) -> None:
    token = portal.signer.sign(CAPTURED_URL)
    response = portal.log_in(username=USERNAME, password=PASSWORD, t=token)
    assert response.headers["location"] == CAPTURED_URL


def test_radius_login_sends_device(portal: RadiusPortal) -> None:
    portal.log_in(username=USERNAME, password=PASSWORD)
    assert portal.radius.checked == [(USERNAME, Device.parse(CLIENT_MAC, CLIENT_IP))]


def test_status_names_radius_account(portal: RadiusPortal) -> None:
    portal.log_in(username=USERNAME, password=PASSWORD)
    assert f"the account {USERNAME}" in portal.client.get("/status").text


def test_radius_reject_is_403(portal: RadiusPortal) -> None:
    response = portal.log_in(username=USERNAME, password="wrong")
    assert response.status_code == 403
    assert WRONG_PASSWORD in response.text
    assert portal.sessions() == []


def test_radius_reject_keeps_name_not_password(portal: RadiusPortal) -> None:
    response = portal.log_in(username=USERNAME, password="typo-secret")
    assert f'value="{USERNAME}"' in response.text
    assert "typo-secret" not in response.text


def test_radius_rejects_count_as_failures(portal: RadiusPortal) -> None:
    for _ in range(5):
        assert portal.log_in(username=USERNAME, password="x").status_code == 403
    response = portal.log_in(username=USERNAME, password=PASSWORD)
    assert response.status_code == 429
    assert len(portal.radius.checked) == 5


def test_radius_down_is_503(portal: RadiusPortal) -> None:
    portal.radius.down = True
    response = portal.log_in(username=USERNAME, password=PASSWORD)
    assert response.status_code == 503
    assert SERVICE_UNAVAILABLE in response.text
    assert portal.sessions() == []


def test_radius_down_is_not_a_failure(portal: RadiusPortal) -> None:
    portal.radius.down = True
    for _ in range(6):
        assert portal.log_in(username=USERNAME, password=PASSWORD).status_code == 503


def test_login_without_csrf_sends_nothing(portal: RadiusPortal) -> None:
    response = portal.client.post(
        "/login", data={"username": USERNAME, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert portal.radius.checked == []


def test_local_user_checked_before_radius() -> None:
    for portal in open_portal(["user", "radius"]):
        user = User("local", hash_password(LOCAL_PASSWORD), time.time())
        portal.call(portal.store.add_user, user)
        response = portal.log_in(username="local", password=LOCAL_PASSWORD)
        assert response.status_code == 303
        assert portal.radius.checked == []
        (session,) = portal.sessions()
        assert session.method == Method.USER


def test_unknown_local_user_tries_radius() -> None:
    for portal in open_portal(["user", "radius"]):
        response = portal.log_in(username=USERNAME, password=PASSWORD)
        assert response.status_code == 303
        (session,) = portal.sessions()
        assert session.method == Method.RADIUS
