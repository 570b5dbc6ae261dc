"""The portal application, served by Starlette's TestClient over a real Gateway."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from starlette.testclient import TestClient

from capport.config import Config, parse_config
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Gateway
from capport.models import Device, IPAddress, Session
from capport.neighbours import MemoryNeighbours, NeighbourTable
from capport.portal import create_portal_app
from capport.portal.csrf import CsrfTokens
from capport.portal.headers import SECURITY_HEADERS
from capport.store import SQLiteStore
from capport.tokens import TokenSigner

CLIENT_IP = "192.0.2.11"
CLIENT_MAC = "02:00:00:00:00:11"
DEVICE = Device.parse(CLIENT_MAC, CLIENT_IP)
PORTAL_ADDRESS = "192.0.2.1"
SECRET = b"portal-test-secret-0123456789abcdef"
TOKEN_SECRET = b"token-test-secret-0123456789abcdef"
CAPTURED_URL = "http://example.com/news?page=2"
TITLE = "Harbour Cafe Wi-Fi"
TERMS = "First paragraph of the terms.\n\nSecond paragraph of the terms."


@dataclass
class Portal:
    client: TestClient
    gateway: Gateway
    store: SQLiteStore
    enforcer: MemoryEnforcer
    neighbours: Any
    signer: TokenSigner

    def call(self, function: Any, *args: Any) -> Any:
        """Run an async function on the event loop the application runs on."""
        assert self.client.portal is not None
        return self.client.portal.call(function, *args)

    def active_sessions(self) -> list[Session]:
        return self.call(self.store.active_sessions)

    def csrf_token(self) -> str:
        """Fetch the splash page and return the CSRF token in its form."""
        return csrf_token_in(self.client.get("/").text)

    def accept(self, **fields: str) -> Any:
        return self.client.post("/accept", data={"csrf": self.csrf_token(), **fields})

    def sign_in(self) -> None:
        response = self.accept()
        assert response.status_code == 303


def make_config(terms: str = TERMS) -> Config:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": PORTAL_ADDRESS, "title": TITLE, "terms": terms},
        }
    )


def csrf_token_in(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


def start_portal(
    config: Config,
    neighbours: NeighbourTable,
    raise_server_exceptions: bool = True,
) -> Iterator[Portal]:
    store = SQLiteStore(":memory:")
    enforcer = MemoryEnforcer()
    gateway = Gateway(store, enforcer, neighbours, session_duration=3600.0)
    signer = TokenSigner(TOKEN_SECRET, lifetime=900.0)
    app = create_portal_app(gateway, signer, config, SECRET)
    with TestClient(
        app,
        client=(CLIENT_IP, 50000),
        follow_redirects=False,
        raise_server_exceptions=raise_server_exceptions,
    ) as client:
        portal = Portal(client, gateway, store, enforcer, neighbours, signer)
        portal.call(store.open)
        portal.call(gateway.start)
        try:
            yield portal
        finally:
            portal.call(store.close)


@pytest.fixture
def portal() -> Iterator[Portal]:
    neighbours = MemoryNeighbours({ip_address(CLIENT_IP): CLIENT_MAC})
    yield from start_portal(make_config(), neighbours)


def expired_token(signer: TokenSigner, monkeypatch: pytest.MonkeyPatch) -> str:
    an_hour_ago = int(time.time()) - 3600
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: an_hour_ago)
        return signer.sign(CAPTURED_URL)


# Splash page


def test_splash_shows_title_and_terms(portal: Portal) -> None:
    response = portal.client.get("/")
    assert response.status_code == 200
    assert f"<title>{TITLE}</title>" in response.text
    assert "<p>First paragraph of the terms.</p>" in response.text
    assert "<p>Second paragraph of the terms.</p>" in response.text


def test_splash_has_accept_form_with_csrf(portal: Portal) -> None:
    html = portal.client.get("/").text
    assert '<form method="post" action="/accept">' in html
    assert csrf_token_in(html)
    assert '<button type="submit">' in html


def test_splash_carries_valid_return_token(portal: Portal) -> None:
    token = portal.signer.sign(CAPTURED_URL)
    html = portal.client.get("/", params={"t": token}).text
    assert f'name="t" value="{token}"' in html
    assert "example.com" in html


@pytest.mark.parametrize("token", ["", "garbage"], ids=["empty", "garbage"])
def test_splash_with_invalid_token_is_400(portal: Portal, token: str) -> None:
    response = portal.client.get("/", params={"t": token})
    html = response.text
    assert response.status_code == 400
    assert 'name="t"' not in html
    assert 'class="notice"' in html
    assert csrf_token_in(html)


def test_splash_with_expired_token_drops_it(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = expired_token(portal.signer, monkeypatch)
    response = portal.client.get("/", params={"t": token})
    html = response.text
    assert response.status_code == 400
    assert 'name="t"' not in html
    assert 'class="notice"' in html


def test_splash_without_token_is_200(portal: Portal) -> None:
    response = portal.client.get("/")
    assert response.status_code == 200
    assert 'class="notice"' not in response.text


def test_splash_when_signed_in_shows_status(portal: Portal) -> None:
    portal.sign_in()
    html = portal.client.get("/").text
    assert "You are connected." in html
    assert 'action="/accept"' not in html


# Accept


def test_accept_grants_device(portal: Portal) -> None:
    portal.sign_in()
    assert DEVICE in portal.enforcer.authorised()
    sessions = portal.active_sessions()
    assert [session.device for session in sessions] == [DEVICE]
    assert sessions[0].method == "click-through"


def test_accept_redirects_to_captured_url(portal: Portal) -> None:
    response = portal.accept(t=portal.signer.sign(CAPTURED_URL))
    assert response.status_code == 303
    assert response.headers["location"] == CAPTURED_URL


def test_accept_redirects_to_captured_https_url(portal: Portal) -> None:
    url = "https://[2001:db8::1]:8443/a%20b?q=1"
    response = portal.accept(t=portal.signer.sign(url))
    assert response.headers["location"] == url


def test_accept_without_token_redirects_to_status(portal: Portal) -> None:
    response = portal.accept()
    assert response.status_code == 303
    assert response.headers["location"] == "/status"


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "\u00e9\u0000<>", "x" * 20000],
    ids=["empty", "garbage", "dotted", "odd-characters", "too-long"],
)
def test_accept_with_bad_token_is_400(portal: Portal, token: str) -> None:
    response = portal.accept(t=token)
    assert response.status_code == 400
    assert "nothing was granted" in response.text
    assert 'action="/accept"' in response.text
    assert 'name="t"' not in response.text
    assert portal.enforcer.authorised() == {}
    assert portal.active_sessions() == []


def test_accept_with_expired_token_is_400(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = portal.accept(t=expired_token(portal.signer, monkeypatch))
    assert response.status_code == 400
    assert portal.enforcer.authorised() == {}


def test_accept_with_forged_token_is_400(portal: Portal) -> None:
    forged = TokenSigner(b"another-key-0123456789", 900.0).sign(CAPTURED_URL)
    response = portal.accept(t=forged)
    assert response.status_code == 400
    assert portal.enforcer.authorised() == {}


def test_accept_after_bad_token_grants(portal: Portal) -> None:
    portal.accept(t="garbage")
    response = portal.accept()
    assert response.status_code == 303
    assert response.headers["location"] == "/status"
    assert DEVICE in portal.enforcer.authorised()


def test_accept_twice_keeps_one_session(portal: Portal) -> None:
    portal.sign_in()
    first = portal.active_sessions()
    portal.sign_in()
    assert portal.active_sessions() == first


def test_accept_without_csrf_is_rejected(portal: Portal) -> None:
    response = portal.client.post("/accept", data={})
    assert response.status_code == 403
    assert portal.enforcer.authorised() == {}
    assert portal.active_sessions() == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        "1700000000.0000",
        CsrfTokens(SECRET).issue("192.0.2.99"),
        CsrfTokens(b"another-secret").issue(CLIENT_IP),
        CsrfTokens(SECRET, clock=lambda: time.time() - 5 * 3600).issue(CLIENT_IP),
    ],
    ids=["empty", "garbage", "wrong-mac", "other-ip", "other-secret", "expired"],
)
def test_accept_with_forged_csrf_is_rejected(portal: Portal, token: str) -> None:
    response = portal.client.post("/accept", data={"csrf": token})
    assert response.status_code == 403
    assert portal.enforcer.authorised() == {}
    assert portal.active_sessions() == []


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://testserver:8080", "https://testserver"],
)
def test_accept_from_foreign_origin_is_rejected(portal: Portal, origin: str) -> None:
    token = portal.csrf_token()
    response = portal.client.post(
        "/accept", data={"csrf": token}, headers={"Origin": origin}
    )
    assert response.status_code == 403
    assert portal.enforcer.authorised() == {}
    assert portal.active_sessions() == []


@pytest.mark.parametrize(
    "origin", ["http://testserver", "http://TestServer:80", f"http://{PORTAL_ADDRESS}"]
)
def test_accept_from_own_origin_is_allowed(portal: Portal, origin: str) -> None:
    token = portal.csrf_token()
    response = portal.client.post(
        "/accept", data={"csrf": token}, headers={"Origin": origin}
    )
    assert response.status_code == 303


def test_accept_form_cannot_choose_device(portal: Portal) -> None:
    other_ip = "192.0.2.50"
    other_mac = "02:00:00:00:00:50"
    portal.neighbours.entries[ip_address(other_ip)] = other_mac
    response = portal.accept(mac=other_mac, ip=other_ip)
    assert response.status_code == 303
    assert list(portal.enforcer.authorised()) == [DEVICE]


def test_accept_ignores_forwarded_headers(portal: Portal) -> None:
    other_ip = "192.0.2.50"
    portal.neighbours.entries[ip_address(other_ip)] = "02:00:00:00:00:50"
    token = portal.csrf_token()
    portal.client.post(
        "/accept",
        data={"csrf": token},
        headers={"X-Forwarded-For": other_ip, "X-Real-IP": other_ip},
    )
    assert list(portal.enforcer.authorised()) == [DEVICE]


def test_accept_rejects_oversized_body(portal: Portal) -> None:
    response = portal.accept(padding="x" * 64 * 1024)
    assert response.status_code == 413
    assert portal.enforcer.authorised() == {}


def test_accept_rejects_json_body(portal: Portal) -> None:
    response = portal.client.post("/accept", json={"csrf": portal.csrf_token()})
    assert response.status_code == 403
    assert portal.enforcer.authorised() == {}


def test_accept_rejects_too_many_fields(portal: Portal) -> None:
    fields = {f"field{number}": "x" for number in range(40)}
    response = portal.accept(**fields)
    assert response.status_code == 400
    assert portal.enforcer.authorised() == {}


def test_accept_by_get_is_not_allowed(portal: Portal) -> None:
    response = portal.client.get("/accept")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert portal.enforcer.authorised() == {}


# Status


def test_status_shows_session(portal: Portal) -> None:
    portal.sign_in()
    html = portal.client.get("/status").text
    assert CLIENT_MAC in html
    assert CLIENT_IP in html
    assert "Signed in since" in html
    assert "Expires at" in html


def test_status_shows_remaining_time(portal: Portal) -> None:
    portal.sign_in()
    html = portal.client.get("/status").text
    assert "<dd>1 hour</dd>" in html


def test_status_has_logout_form(portal: Portal) -> None:
    portal.sign_in()
    html = portal.client.get("/status").text
    assert '<form method="post" action="/logout">' in html
    assert csrf_token_in(html)


def test_status_when_signed_out_links_to_splash(portal: Portal) -> None:
    response = portal.client.get("/status")
    assert response.status_code == 200
    assert "You are not signed in." in response.text
    assert 'href="/"' in response.text


def test_splash_for_trusted_mac_says_online(portal: Portal) -> None:
    portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    response = portal.client.get("/")
    assert response.status_code == 200
    assert "This device does not need to sign in." in response.text
    assert CLIENT_MAC in response.text
    assert 'action="/accept"' not in response.text


def test_splash_for_trusted_mac_offers_return(portal: Portal) -> None:
    portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    token = portal.signer.sign(CAPTURED_URL)
    html = portal.client.get("/", params={"t": token}).text
    assert 'href="http://example.com/news?page=2"' in html


def test_status_for_trusted_mac_says_online(portal: Portal) -> None:
    portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    html = portal.client.get("/status").text
    assert "This device does not need to sign in." in html
    assert "You are not signed in." not in html


def test_status_for_untrusted_mac_is_signed_out(portal: Portal) -> None:
    portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "untrust")
    html = portal.client.get("/status").text
    assert "You are not signed in." in html


# Logout


def logout_token(portal: Portal) -> str:
    return csrf_token_in(portal.client.get("/status").text)


def test_logout_ends_session(portal: Portal) -> None:
    portal.sign_in()
    response = portal.client.post("/logout", data={"csrf": logout_token(portal)})
    assert response.status_code == 200
    assert "You are signed out" in response.text
    assert 'href="/"' in response.text
    assert portal.active_sessions() == []
    assert portal.enforcer.authorised() == {}


def test_logout_records_reason(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    portal.sign_in()
    session = portal.active_sessions()[0]
    with caplog.at_level(logging.INFO, logger="capport.gateway"):
        portal.client.post("/logout", data={"csrf": logout_token(portal)})
    messages = [record.getMessage() for record in caplog.records]
    assert f"Ended session {session.id} of {DEVICE}: logout." in messages


def test_logout_when_signed_out_says_so(portal: Portal) -> None:
    response = portal.client.post("/logout", data={"csrf": portal.csrf_token()})
    assert response.status_code == 200
    assert "This device was not signed in." in response.text


def test_logout_without_csrf_is_rejected(portal: Portal) -> None:
    portal.sign_in()
    response = portal.client.post("/logout", data={"csrf": "1.abc"})
    assert response.status_code == 403
    assert DEVICE in portal.enforcer.authorised()
    assert len(portal.active_sessions()) == 1


def test_logout_from_foreign_origin_is_rejected(portal: Portal) -> None:
    portal.sign_in()
    response = portal.client.post(
        "/logout",
        data={"csrf": logout_token(portal)},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert DEVICE in portal.enforcer.authorised()
    assert len(portal.active_sessions()) == 1


# Escaping


def test_terms_markup_is_escaped() -> None:
    terms = 'Be nice. <script>alert(1)</script> <img src=x onerror="alert(2)">'
    neighbours = MemoryNeighbours({ip_address(CLIENT_IP): CLIENT_MAC})
    for portal in start_portal(make_config(terms), neighbours):
        html = portal.client.get("/").text
        assert "<script>" not in html
        assert "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "path", ["/", "/status", "/nowhere"], ids=["splash", "status", "not-found"]
)
def test_query_markup_is_not_echoed(portal: Portal, path: str) -> None:
    markup = '"><script>alert(1)</script><svg onload=alert(2)>'
    response = portal.client.get(path, params={"t": markup, "x": markup})
    assert "<script>" not in response.text
    assert "<svg" not in response.text


def test_path_markup_is_not_echoed(portal: Portal) -> None:
    response = portal.client.get("/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status_code == 404
    assert "<script>" not in response.text
    assert "alert(1)" not in response.text


def test_host_markup_is_not_echoed(portal: Portal) -> None:
    response = portal.client.get("/", headers={"Host": '"><script>x</script>'})
    assert "<script>" not in response.text


# Identity


def test_unknown_device_gets_clean_error() -> None:
    for portal in start_portal(make_config(), MemoryNeighbours()):
        response = portal.client.get("/")
        assert response.status_code == 503
        assert "could not identify your device" in response.text
        assert 'href="/"' in response.text
        assert "Traceback" not in response.text


def test_unknown_device_cannot_accept() -> None:
    for portal in start_portal(make_config(), MemoryNeighbours()):
        token = CsrfTokens(SECRET).issue(CLIENT_IP)
        response = portal.client.post("/accept", data={"csrf": token})
        assert response.status_code == 503
        assert portal.active_sessions() == []


def add_device_with_same_mac(portal: Portal) -> Device:
    """Authorise CLIENT_MAC at another address that is still in the table."""
    original = Device.parse(CLIENT_MAC, "192.0.2.10")
    portal.neighbours.entries[original.ip] = original.mac
    portal.call(portal.gateway.grant, original, "click-through")
    return original


def test_mac_conflict_splash_is_409(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    add_device_with_same_mac(portal)
    with caplog.at_level(logging.WARNING, logger="capport.gateway"):
        response = portal.client.get("/")
    assert response.status_code == 409
    assert "already in use" in response.text
    assert 'action="/accept"' not in response.text
    assert any(CLIENT_IP in record.getMessage() for record in caplog.records)


def test_mac_conflict_accept_is_409(portal: Portal) -> None:
    original = add_device_with_same_mac(portal)
    token = CsrfTokens(SECRET).issue(CLIENT_IP)
    response = portal.client.post("/accept", data={"csrf": token})
    assert response.status_code == 409
    assert list(portal.enforcer.authorised()) == [original]
    assert DEVICE not in portal.enforcer.authorised()


# Headers and error pages


def assert_security_headers(headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    assert "form-action" not in headers["content-security-policy"]


@pytest.mark.parametrize(
    "path", ["/", "/status", "/static/portal.css", "/nowhere", "/accept"]
)
def test_get_responses_have_security_headers(portal: Portal, path: str) -> None:
    assert_security_headers(portal.client.get(path).headers)


def test_redirect_has_security_headers(portal: Portal) -> None:
    response = portal.accept()
    assert response.status_code == 303
    assert_security_headers(response.headers)


def test_rejected_post_has_security_headers(portal: Portal) -> None:
    response = portal.client.post("/accept", data={})
    assert response.status_code == 403
    assert_security_headers(response.headers)


def test_logout_page_has_security_headers(portal: Portal) -> None:
    response = portal.client.post("/logout", data={"csrf": portal.csrf_token()})
    assert_security_headers(response.headers)


def test_unknown_device_page_has_security_headers() -> None:
    for portal in start_portal(make_config(), MemoryNeighbours()):
        assert_security_headers(portal.client.get("/").headers)


def test_not_found_page_is_clean(portal: Portal) -> None:
    response = portal.client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not Found" in response.text
    assert 'href="/"' in response.text


def test_trailing_slash_is_not_redirected(portal: Portal) -> None:
    response = portal.client.get("/status/", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


def test_stylesheet_is_served(portal: Portal) -> None:
    response = portal.client.get("/static/portal.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


class FailingNeighbours:
    """A neighbour table whose lookups fail, as a netlink error would."""

    def lookup(self, ip: IPAddress) -> str | None:
        raise RuntimeError("netlink socket closed /secret/path")


def test_server_error_page_is_clean() -> None:
    neighbours = FailingNeighbours()
    for portal in start_portal(
        make_config(), neighbours, raise_server_exceptions=False
    ):
        response = portal.client.get("/")
        assert response.status_code == 500
        assert "Something went wrong" in response.text
        assert "Traceback" not in response.text
        assert "/secret/path" not in response.text
        assert_security_headers(response.headers)
