"""aiohttp: a raise_for_status callable that raises on a captive portal.

    import aiohttp
    from capport.client.integrations.aiohttp import raise_for_portal_or_status

    async with aiohttp.ClientSession(raise_for_status=raise_for_portal_or_status) as s:
        async with s.get("http://example.org/") as response:
            ...

raise_for_portal_or_status raises NetworkAuthenticationRequired on a portal
and otherwise does what raise_for_status=True does (ClientResponseError for
4xx and 5xx). raise_on_portal raises only on a portal and leaves other
statuses to the caller. aiohttp retries nothing itself, so a 511 is sent
once.
"""

from __future__ import annotations

import aiohttp

from capport.client.detect import raise_for_portal_async


async def raise_on_portal(response: aiohttp.ClientResponse) -> None:
    """raise_for_status callable: raise NetworkAuthenticationRequired on a portal."""
    await raise_for_portal_async(response)


async def raise_for_portal_or_status(response: aiohttp.ClientResponse) -> None:
    """raise_for_status callable: raise on a portal, then on any 4xx or 5xx."""
    await raise_for_portal_async(response)
    response.raise_for_status()
