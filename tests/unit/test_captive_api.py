"""The RFC 8908 Captive Portal API and the portal's own probe responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import pytest
from starlette.testclient import TestClient

from capport.config import parse_config
from capport.enforce.base import MemoryEnforcer
from capport.gateway import Clocks, Gateway
from capport.models import Device
from capport.neighbours import MemoryNeighbours
from capport.portal import create_portal_app
from capport.portal.captiveapi import CAPTIVE_JSON, api_document, negotiate
from capport.probes import APPLE_SUCCESS
from capport.store import SQLiteStore
from capport.tokens import TokenSigner

CLIENT_IP = "192.0.2.11"
CLIENT_MAC = "02:00:00:00:00:11"
DEVICE = Device.parse(CLIENT_MAC, CLIENT_IP)
PORTAL_URL = "https://portal.example/"
VENUE_URL = "https://venue.example/info"
APPLE_AGENT = "CaptiveNetworkSupport-355.200.27 wispr"
ACCEPT_CAPTIVE = {"Accept": CAPTIVE_JSON}


class FakeClock:
    """A monotonic and wall clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Portal:
    client: TestClient
    gateway: Gateway
    clock: FakeClock

    def log_in(self) -> None:
        assert self.client.portal is not None
        self.client.portal.call(self.gateway.grant, DEVICE, "click-through")

    def api(self, headers: dict[str, str] | None = None) -> Any:
        return self.client.get("/api/captive", headers=headers or ACCEPT_CAPTIVE)


def make_config(**api: Any) -> Any:
    return parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1"},
            "tls": {
                "certificate": "/nonexistent/portal.pem",
                "key": "/nonexistent/portal-key.pem",
                "hostname": "portal.example",
            },
            "api": {"venue_info_url": VENUE_URL, **api},
            "probes": [
                {
                    "host": "captive.apple.com",
                    "path": "/hotspot-detect.html",
                    "user_agent": "CaptiveNetworkSupport",
                    "answer_after_login": True,
                    "content_type": "text/html",
                    "body": APPLE_SUCCESS,
                }
            ],
        }
    )


@pytest.fixture
def portal(request: pytest.FixtureRequest) -> Iterator[Portal]:
    # Tests may pass [api] settings with indirect parametrization.
    api_settings = getattr(request, "param", {})
    store = SQLiteStore(":memory:")
    clock = FakeClock()
    neighbours = MemoryNeighbours({ip_address(CLIENT_IP): CLIENT_MAC})
    gateway = Gateway(
        store,
        MemoryEnforcer(),
        neighbours,
        session_duration=600.0,
        clocks=Clocks(wall=clock, monotonic=clock),
    )
    signer = TokenSigner(b"api-test-secret-api-test-secret-0", lifetime=900.0)
    config = make_config(**api_settings)
    app = create_portal_app(gateway, signer, config, b"api-secret-" * 3)
    with TestClient(
        app,
        base_url="https://portal.example",
        client=(CLIENT_IP, 50000),
        follow_redirects=False,
    ) as client:
        assert client.portal is not None
        client.portal.call(store.open)
        client.portal.call(gateway.start)
        try:
            yield Portal(client, gateway, clock)
        finally:
            client.portal.call(store.close)


# Content negotiation


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, CAPTIVE_JSON),
        ("", CAPTIVE_JSON),
        (CAPTIVE_JSON, CAPTIVE_JSON),
        ("*/*", CAPTIVE_JSON),
        ("application/*", CAPTIVE_JSON),
        ("application/json", "application/json"),
        ("text/html, application/captive+json;q=0.5", CAPTIVE_JSON),
        ("application/captive+json;q=0, application/json", "application/json"),
        ("text/html", None),
        ("application/captive+json;q=0", None),
        ("application/captive+json;q=0, */*", "application/json"),
        ("application/xml, text/*", None),
    ],
)
def test_negotiate_media_type(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


# The document


def test_document_while_captive_omits_session_fields() -> None:
    document = api_document(
        captive=True,
        user_portal_url=PORTAL_URL,
        venue_info_url=None,
        can_extend_session=True,
        seconds_remaining=None,
    )
    assert document == {"captive": True, "user-portal-url": PORTAL_URL}


def test_document_rounds_seconds_down() -> None:
    document = api_document(
        captive=False,
        user_portal_url=PORTAL_URL,
        venue_info_url=VENUE_URL,
        can_extend_session=False,
        seconds_remaining=59.9,
    )
    assert document["seconds-remaining"] == 59


def test_document_sends_bytes_remaining_with_quota() -> None:
    document = api_document(
        captive=False,
        user_portal_url=PORTAL_URL,
        venue_info_url=None,
        can_extend_session=False,
        seconds_remaining=60.0,
        bytes_remaining=12345,
    )
    assert document["bytes-remaining"] == 12345


def test_document_omits_bytes_remaining_without_quota() -> None:
    document = api_document(
        captive=False,
        user_portal_url=PORTAL_URL,
        venue_info_url=None,
        can_extend_session=False,
        seconds_remaining=60.0,
    )
    assert "bytes-remaining" not in document


# The endpoint


def test_api_before_login_is_captive(portal: Portal) -> None:
    response = portal.api()
    assert response.status_code == 200
    assert response.headers["content-type"] == CAPTIVE_JSON
    body = response.json()
    assert body["captive"] is True
    assert body["user-portal-url"] == PORTAL_URL
    assert body["venue-info-url"] == VENUE_URL
    assert "seconds-remaining" not in body


def test_api_after_login_is_not_captive(portal: Portal) -> None:
    portal.log_in()
    response = portal.api()
    assert response.headers["content-type"] == CAPTIVE_JSON
    body = response.json()
    assert body["captive"] is False
    assert body["user-portal-url"] == PORTAL_URL
    assert body["venue-info-url"] == VENUE_URL
    assert body["can-extend-session"] is False
    assert body["seconds-remaining"] == 600


def test_api_trusted_mac_is_not_captive(portal: Portal) -> None:
    assert portal.client.portal is not None
    portal.client.portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    body = portal.api().json()
    assert body["captive"] is False
    assert body["user-portal-url"] == PORTAL_URL
    assert body["can-extend-session"] is False
    assert "seconds-remaining" not in body
    assert "bytes-remaining" not in body


@pytest.mark.parametrize("portal", [{"can_extend_session": True}], indirect=True)
def test_api_trusted_mac_cannot_extend(portal: Portal) -> None:
    assert portal.client.portal is not None
    portal.client.portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    assert portal.api().json()["can-extend-session"] is False
    portal.log_in()
    assert portal.api().json()["can-extend-session"] is True


def test_api_blocked_mac_is_captive(portal: Portal) -> None:
    assert portal.client.portal is not None
    portal.client.portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "block")
    assert portal.api().json()["captive"] is True


def test_api_seconds_remaining_counts_down(portal: Portal) -> None:
    portal.log_in()
    first = portal.api().json()["seconds-remaining"]
    portal.clock.now += 90
    second = portal.api().json()["seconds-remaining"]
    assert first == 600
    assert second == 510


def test_api_is_captive_again_after_expiry(portal: Portal) -> None:
    portal.log_in()
    portal.clock.now += 601
    assert portal.client.portal is not None
    portal.client.portal.call(portal.gateway.expire_due)
    assert portal.api().json()["captive"] is True


def test_api_forbids_caching(portal: Portal) -> None:
    response = portal.api()
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Accept"


def test_api_document_is_small(portal: Portal) -> None:
    portal.log_in()
    response = portal.api()
    assert len(response.content) < 4096
    assert json.loads(response.content)["captive"] is False


def test_api_rejects_html_only_accept(portal: Portal) -> None:
    response = portal.api({"Accept": "text/html"})
    assert response.status_code == 406


def test_api_serves_plain_json_accept(portal: Portal) -> None:
    response = portal.api({"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_api_is_not_served_over_http(portal: Portal) -> None:
    response = portal.client.get("http://portal.example/api/captive")
    assert response.status_code == 404


def test_api_answers_unknown_device_as_captive(portal: Portal) -> None:
    with TestClient(
        portal.client.app, base_url="https://portal.example", client=("192.0.2.99", 1)
    ) as other:
        response = other.get("/api/captive", headers=ACCEPT_CAPTIVE)
    assert response.json()["captive"] is True


def test_api_path_is_configurable() -> None:
    config = make_config(path="/capport/api")
    assert config.api.path == "/capport/api"


# Probes that reach the portal by a DNS name of the gateway


def apple_probe(portal: Portal, agent: str = APPLE_AGENT) -> Any:
    return portal.client.get(
        "http://captive.apple.com/hotspot-detect.html",
        headers={"User-Agent": agent},
    )


def test_portal_redirects_apple_probe_before_login(portal: Portal) -> None:
    response = apple_probe(portal)
    assert response.status_code == 302
    assert response.headers["location"] == PORTAL_URL
    assert "Success" not in response.text


def test_portal_answers_apple_probe_after_login(portal: Portal) -> None:
    portal.log_in()
    response = apple_probe(portal)
    assert response.status_code == 200
    assert response.content == APPLE_SUCCESS.encode()


def test_portal_answers_apple_probe_of_trusted_mac(portal: Portal) -> None:
    assert portal.client.portal is not None
    portal.client.portal.call(portal.gateway.change_mac_list, CLIENT_MAC, "trust")
    response = apple_probe(portal)
    assert response.status_code == 200
    assert response.content == APPLE_SUCCESS.encode()


def test_portal_leaves_browser_on_probe_host_alone(portal: Portal) -> None:
    portal.log_in()
    response = apple_probe(portal, agent="Mozilla/5.0 (Macintosh)")
    assert response.status_code == 404


def test_portal_forwards_default_probe_after_login_to_pages(portal: Portal) -> None:
    # Without answer_after_login the entry expects the real host, which a
    # name pointing at the gateway cannot reach: the portal has no such page.
    portal.log_in()
    response = portal.client.get("http://connectivitycheck.gstatic.com/generate_204")
    assert response.status_code == 404
