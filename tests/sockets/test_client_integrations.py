"""The library integrations against a loopback portal: raise once, never retry a 511.

The retry settings are the common "retry every 5xx" ones, so each test shows
what the integration changes. Without it, a 511 is sent again and again. With
it, a 511 is sent once and raises NetworkAuthenticationRequired, while a 503
is still retried as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from test_client_portals import PortalServer, running_portal_server
from urllib3.util.retry import Retry

from capport.client import NetworkAuthenticationRequired
from capport.client.integrations.aiohttp import (
    raise_for_portal_or_status,
    raise_on_portal,
)
from capport.client.integrations.httpx import (
    AsyncPortalTransport,
    PortalTransport,
    event_hooks,
)
from capport.client.integrations.requests import PortalAdapter, install
from capport.client.integrations.requests import (
    raise_on_portal as requests_hook,
)
from capport.client.integrations.urllib3 import PortalRetry, portal_retry

ATTEMPTS = 3


@pytest.fixture
def portal_server() -> Iterator[PortalServer]:
    with running_portal_server() as server:
        yield server


def every_5xx() -> Retry:
    return Retry(
        total=ATTEMPTS,
        status_forcelist=list(range(500, 600)),
        backoff_factor=0,
        respect_retry_after_header=False,
    )


# requests


def test_requests_plain_adapter_retries_511(portal_server: PortalServer) -> None:
    """Without the integration, a retry-every-5xx session repeats the 511."""
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=every_5xx()))
        with pytest.raises(requests.exceptions.RetryError):
            session.get(portal_server.url("/511"), timeout=5)
    assert portal_server.count("/511") == ATTEMPTS + 1


def test_requests_adapter_sends_511_once(portal_server: PortalServer) -> None:
    with (
        install(requests.Session(), max_retries=every_5xx()) as session,
        pytest.raises(NetworkAuthenticationRequired) as caught,
    ):
        session.get(portal_server.url("/511"), timeout=5)
    assert portal_server.count("/511") == 1
    assert caught.value.portal_url == portal_server.portal_url
    assert caught.value.response.status_code == 511
    assert caught.value.response.raw.retries.history == ()


def test_requests_adapter_still_retries_503(portal_server: PortalServer) -> None:
    with (
        install(requests.Session(), max_retries=every_5xx()) as session,
        pytest.raises(requests.exceptions.RetryError),
    ):
        session.get(portal_server.url("/503"), timeout=5)
    assert portal_server.count("/503") == ATTEMPTS + 1


@pytest.mark.parametrize("path, status", [("/401", 401), ("/407", 407)])
def test_requests_adapter_passes_auth_errors(
    portal_server: PortalServer, path: str, status: int
) -> None:
    with install(requests.Session()) as session:
        response = session.get(portal_server.url(path), timeout=5)
    assert response.status_code == status


def test_requests_500_raises_http_error(portal_server: PortalServer) -> None:
    with install(requests.Session()) as session:
        response = session.get(portal_server.url("/500"), timeout=5)
    with pytest.raises(requests.HTTPError):
        response.raise_for_status()


def test_requests_hook_raises(portal_server: PortalServer) -> None:
    with requests.Session() as session:
        session.hooks["response"].append(requests_hook)
        with pytest.raises(NetworkAuthenticationRequired):
            session.get(portal_server.url("/511"), timeout=5)


def test_requests_adapter_keeps_int_retries() -> None:
    adapter = PortalAdapter(max_retries=2)
    assert isinstance(adapter.max_retries, PortalRetry)
    assert adapter.max_retries.total == 2


# urllib3


def test_urllib3_retry_sends_511_once(portal_server: PortalServer) -> None:
    retries = PortalRetry(total=ATTEMPTS, status_forcelist=[511, 503], backoff_factor=0)
    with urllib3.PoolManager(retries=retries) as pool:
        response = pool.request("GET", portal_server.url("/511"))
    assert response.status == 511
    assert portal_server.count("/511") == 1


def test_urllib3_plain_retry_repeats_511(portal_server: PortalServer) -> None:
    retries = Retry(
        total=ATTEMPTS, status_forcelist=[511], backoff_factor=0, raise_on_status=False
    )
    with urllib3.PoolManager(retries=retries) as pool:
        pool.request("GET", portal_server.url("/511"))
    assert portal_server.count("/511") == ATTEMPTS + 1


def test_retry_subclass_keeps_behaviour() -> None:
    class Patient(Retry):
        DEFAULT_BACKOFF_MAX = 7

    converted = portal_retry(Patient(total=2, status_forcelist=[511, 503]))
    assert isinstance(converted, Patient)
    assert not converted.is_retry("GET", 511)
    assert converted.is_retry("GET", 503)
    assert isinstance(converted.increment("GET", "/"), Patient)


# httpx


def test_httpx_hook_raises_once(portal_server: PortalServer) -> None:
    with (
        httpx.Client(event_hooks=event_hooks(), timeout=5) as client,
        pytest.raises(NetworkAuthenticationRequired) as caught,
    ):
        client.get(portal_server.url("/511"))
    assert caught.value.portal_url == portal_server.portal_url
    assert portal_server.count("/511") == 1


def test_httpx_transport_raises_once(portal_server: PortalServer) -> None:
    transport = PortalTransport(httpx.HTTPTransport(retries=ATTEMPTS))
    with (
        httpx.Client(transport=transport, timeout=5) as client,
        pytest.raises(NetworkAuthenticationRequired) as caught,
    ):
        client.get(portal_server.url("/511"))
    assert caught.value.portal_url == portal_server.portal_url
    assert portal_server.count("/511") == 1


def test_httpx_503_stays_status_error(portal_server: PortalServer) -> None:
    with httpx.Client(transport=PortalTransport(), timeout=5) as client:
        response = client.get(portal_server.url("/503"))
    with pytest.raises(httpx.HTTPStatusError):
        response.raise_for_status()


def test_httpx_async_hook_raises(portal_server: PortalServer) -> None:
    async def run() -> None:
        hooks = event_hooks(asynchronous=True)
        async with httpx.AsyncClient(event_hooks=hooks, timeout=5) as client:
            await client.get(portal_server.url("/511"))

    with pytest.raises(NetworkAuthenticationRequired):
        asyncio.run(run())
    assert portal_server.count("/511") == 1


def test_httpx_async_transport_raises(portal_server: PortalServer) -> None:
    async def run() -> None:
        transport = AsyncPortalTransport()
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            await client.get(portal_server.url("/511"))

    with pytest.raises(NetworkAuthenticationRequired) as caught:
        asyncio.run(run())
    assert caught.value.portal_url == portal_server.portal_url


def test_httpx_async_transport_passes_401(portal_server: PortalServer) -> None:
    async def run() -> int:
        transport = AsyncPortalTransport()
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            return (await client.get(portal_server.url("/401"))).status_code

    assert asyncio.run(run()) == 401


# aiohttp


def test_aiohttp_raise_on_portal(portal_server: PortalServer) -> None:
    async def run() -> None:
        async with (
            aiohttp.ClientSession(raise_for_status=raise_on_portal) as session,
            session.get(portal_server.url("/511")),
        ):
            pass

    with pytest.raises(NetworkAuthenticationRequired) as caught:
        asyncio.run(run())
    assert caught.value.portal_url == portal_server.portal_url
    assert portal_server.count("/511") == 1


def test_aiohttp_503_stays_response_error(portal_server: PortalServer) -> None:
    async def run() -> None:
        checker = raise_for_portal_or_status
        async with (
            aiohttp.ClientSession(raise_for_status=checker) as session,
            session.get(portal_server.url("/503")),
        ):
            pass

    with pytest.raises(aiohttp.ClientResponseError) as caught:
        asyncio.run(run())
    assert caught.value.status == 503


def test_aiohttp_raise_on_portal_passes_407(portal_server: PortalServer) -> None:
    async def run() -> int:
        async with (
            aiohttp.ClientSession(raise_for_status=raise_on_portal) as session,
            session.get(portal_server.url("/407")) as response,
        ):
            return response.status

    assert asyncio.run(run()) == 407
