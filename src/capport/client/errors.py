"""The exceptions of the client library.

NetworkAuthenticationRequired deliberately derives from nothing that HTTP
libraries or retry helpers treat as a transient failure: not OSError (which
requests' and aiohttp's connection errors are), not requests.HTTPError or
httpx.HTTPStatusError. Code that retries server errors therefore does not
retry a captive portal, which would only repeat the 511 until someone logs in.
"""

from __future__ import annotations

from typing import Any

from capport.client.portal import Portal
from capport.errors import CapportError


class NetworkAuthenticationRequired(CapportError):
    """The network is captive: a person must log in before requests get through.

    portal is what detection found. portal_url and api_uri repeat its login
    URL and RFC 8908 API URI (either may be None). response is the HTTP
    response that gave the portal away, as the caller's library returned it.
    """

    def __init__(self, portal: Portal, response: Any = None) -> None:
        self.portal = portal
        self.response = response
        where = f" from {portal.request_url}" if portal.request_url else ""
        super().__init__(
            f"{portal.describe()} (HTTP {portal.status}{where}, "
            f"detected by {portal.kind.value})"
        )

    @property
    def portal_url(self) -> str | None:
        return self.portal.url

    @property
    def api_uri(self) -> str | None:
        return self.portal.api_uri


class AccessTimeout(CapportError, TimeoutError):
    """The network did not open before the deadline of a wait for access."""


class CaptiveApiError(CapportError):
    """The RFC 8908 Captive Portal API was unreachable or sent an invalid response."""
