"""Operating-system probes sent to the responder over real TCP connections."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

import pytest
import test_responder
from test_responder import PORTAL, RunningResponder, get

from capport.probes import APPLE_SUCCESS, DEFAULT_PROBES, ProbeTable, merge_probes

pytestmark = pytest.mark.timeout(60)

# The responder on asyncio's loop and on uvloop, as the responder tests run it.
start_responder = test_responder.start_responder


@pytest.fixture
def responder(start_responder: Callable[..., RunningResponder]) -> RunningResponder:
    return start_responder()


APPLE_PATH = "/hotspot-detect.html"
APPLE_HOST = "captive.apple.com"
APPLE_AGENT = b"User-Agent: CaptiveNetworkSupport-355.200.27 wispr\r\n"
BROWSER_AGENT = b"User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)\r\n"


def apple_probe(agent: bytes = APPLE_AGENT) -> bytes:
    return get(APPLE_PATH, host=APPLE_HOST, extra=agent)


def test_apple_probe_gets_redirect(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(apple_probe())
    response = client.read_response()
    assert response.status == 302
    assert response.headers["location"] == PORTAL
    assert "Success" not in response.text


def test_apple_page_without_probe_agent_gets_511(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(apple_probe(BROWSER_AGENT))
    assert client.read_response().status == 511


def test_agents_on_one_host_never_share_responses(
    responder: RunningResponder,
) -> None:
    # The response cache is keyed without the User-Agent, so a probe host
    # whose response depends on it must bypass the cache in both orders.
    client = responder.connect()
    statuses = []
    for agent in (BROWSER_AGENT, APPLE_AGENT, BROWSER_AGENT, APPLE_AGENT):
        client.send(apple_probe(agent))
        statuses.append(client.read_response().status)
    assert statuses == [511, 302, 511, 302]


def test_repeated_android_probe_keeps_redirect(responder: RunningResponder) -> None:
    client = responder.connect()
    statuses = []
    for _ in range(3):
        client.send(get("/generate_204", host="connectivitycheck.gstatic.com"))
        statuses.append(client.read_response().status)
    assert statuses == [302, 302, 302]


def test_other_paths_of_probe_host_get_511(responder: RunningResponder) -> None:
    client = responder.connect()
    client.send(get("/search?q=x", host="www.google.com"))
    assert client.read_response().status == 511


def test_logged_in_device_gets_configured_success(
    responder: RunningResponder,
) -> None:
    apple = next(p for p in DEFAULT_PROBES if p.host == APPLE_HOST)
    answering = apple.model_copy(update={"answer_after_login": True})
    responder.responder.probes = ProbeTable(merge_probes([answering]))
    client = responder.connect()
    client.send(apple_probe())
    assert client.read_response().status == 302
    responder.authorised.add(IPv4Address("127.0.0.1"))
    client.send(apple_probe())
    response = client.read_response()
    assert response.status == 200
    assert response.body == APPLE_SUCCESS.encode()
