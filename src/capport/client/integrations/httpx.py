"""httpx: event hooks and transports that raise on a captive portal.

    import httpx
    from capport.client.integrations.httpx import PortalTransport, event_hooks

    client = httpx.Client(event_hooks=event_hooks())
    # or, below the client, for every request it sends:
    client = httpx.Client(transport=PortalTransport())

    async_client = httpx.AsyncClient(event_hooks=event_hooks(asynchronous=True))
    async_client = httpx.AsyncClient(transport=AsyncPortalTransport())

httpx has no status retries of its own (HTTPTransport(retries=N) repeats
failed connections only), so a 511 is never retried; it raises
NetworkAuthenticationRequired, never httpx.HTTPStatusError.
"""

from __future__ import annotations

from typing import Any

import httpx

from capport.client.detect import raise_for_portal, raise_for_portal_async
from capport.client.errors import NetworkAuthenticationRequired


def raise_on_portal(response: httpx.Response) -> None:
    """Response event hook for httpx.Client."""
    raise_for_portal(response)


async def raise_on_portal_async(response: httpx.Response) -> None:
    """Response event hook for httpx.AsyncClient."""
    await raise_for_portal_async(response)


def event_hooks(asynchronous: bool = False) -> dict[str, list[Any]]:
    """Return event_hooks for httpx.Client, or httpx.AsyncClient if asynchronous."""
    hook = raise_on_portal_async if asynchronous else raise_on_portal
    return {"response": [hook]}


class PortalTransport(httpx.BaseTransport):
    """A transport that raises NetworkAuthenticationRequired on a captive portal.

    It wraps transport, by default a new httpx.HTTPTransport().
    """

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._transport.handle_request(request)
        try:
            # The client sets response.request only after the transport
            # returns, so the URL is passed along.
            raise_for_portal(response, request_url=str(request.url))
        except NetworkAuthenticationRequired:
            response.close()
            raise
        return response

    def close(self) -> None:
        self._transport.close()


class AsyncPortalTransport(httpx.AsyncBaseTransport):
    """An async transport that raises NetworkAuthenticationRequired on a portal.

    It wraps transport, by default a new httpx.AsyncHTTPTransport().
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        try:
            await raise_for_portal_async(response, request_url=str(request.url))
        except NetworkAuthenticationRequired:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
