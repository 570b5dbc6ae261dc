"""retry_after_login against a loopback portal that opens when a flag flips."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests
from test_client_portals import (
    CONTENT,
    PROBE,
    PortalServer,
    running_portal_server,
)

from capport.client import (
    Backoff,
    Portal,
    Probe,
    State,
    check_connectivity,
    retry_after_login,
    retry_after_login_async,
)
from capport.client.integrations.httpx import event_hooks
from capport.client.integrations.requests import install

FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture
def portal_server() -> Iterator[PortalServer]:
    with running_portal_server() as server:
        yield server


def log_in_soon(server: PortalServer, seen: list[Portal]) -> Callable[[Portal], None]:
    """Return an on_portal callback that opens server 0.3 s after it is called."""

    def on_portal(portal: Portal) -> None:
        seen.append(portal)
        timer = threading.Timer(0.3, setattr, (server, "is_open", True))
        timer.start()

    return on_portal


def probe_check(server: PortalServer) -> Callable[[], bool]:
    probe = Probe(server.url("/probe"), PROBE, timeout=2)
    return lambda: check_connectivity(probe).state is State.ONLINE


def test_retry_returns_response_after_login(portal_server: PortalServer) -> None:
    seen: list[Portal] = []
    with install(requests.Session()) as session:
        response = retry_after_login(
            lambda: session.get(portal_server.url("/gated"), timeout=5),
            on_portal=log_in_soon(portal_server, seen),
            check=probe_check(portal_server),
            timeout=10,
            backoff=FAST,
        )
    assert response.status_code == 200
    assert response.content == CONTENT
    assert len(seen) == 1
    assert seen[0].url == portal_server.portal_url
    assert portal_server.count("/gated") == 2
    assert portal_server.count("/probe") >= 2


def test_async_retry_returns_response_after_login(
    portal_server: PortalServer,
) -> None:
    seen: list[Portal] = []

    async def run() -> httpx.Response:
        hooks = event_hooks(asynchronous=True)
        async with httpx.AsyncClient(event_hooks=hooks, timeout=5) as client:
            return await retry_after_login_async(
                lambda: client.get(portal_server.url("/gated")),
                on_portal=log_in_soon(portal_server, seen),
                check=probe_check(portal_server),
                timeout=10,
                backoff=FAST,
            )

    response = asyncio.run(run())
    assert response.status_code == 200
    assert len(seen) == 1
    assert portal_server.count("/gated") == 2
