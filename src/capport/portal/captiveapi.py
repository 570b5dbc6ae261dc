"""The Captive Portal API of RFC 8908: a device's captive state as JSON.

The response describes the requesting device, identified like every portal
request by its source address and the kernel's neighbour entry. The document
building and Accept negotiation are pure; the endpoint only looks the
device up.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from capport.config import ApiSection
from capport.errors import DeviceNotFound
from capport.gateway import Gateway
from capport.portal.inputs import client_address

log = logging.getLogger("capport.portal")

# RFC 8908 section 5 registers this media type for the API's JSON.
CAPTIVE_JSON = "application/captive+json"

# The media types the API can send, most specific first. A client that
# accepts only application/json gets the same JSON under that type.
_OFFERED = (CAPTIVE_JSON, "application/json")


def negotiate(accept: str | None) -> str | None:
    """Return the media type to respond with for an Accept header, or None for 406.

    A missing or empty Accept accepts anything (RFC 9110 section 12.5.1).
    Each offered type gets the quality of the most specific matching range,
    so "application/captive+json;q=0, */*" rejects the captive type.
    """
    if accept is None or not accept.strip():
        return CAPTIVE_JSON
    ranges = [_parse_range(item) for item in accept.split(",") if item.strip()]
    for offered in _OFFERED:
        if _quality(offered, ranges) > 0:
            return offered
    return None


def _parse_range(item: str) -> tuple[str, float]:
    media, *parameters = (part.strip() for part in item.split(";"))
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return media.lower(), quality


def _quality(offered: str, ranges: list[tuple[str, float]]) -> float:
    kind = offered.partition("/")[0]
    best_rank = -1
    best_quality = 0.0
    for media, quality in ranges:
        if media == offered:
            rank = 2
        elif media == f"{kind}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_quality = rank, quality
    return best_quality


def api_document(
    *,
    captive: bool,
    user_portal_url: str,
    venue_info_url: str | None,
    can_extend_session: bool,
    seconds_remaining: float | None,
    bytes_remaining: int | None = None,
) -> dict[str, Any]:
    """Build the API's JSON object (RFC 8908 section 5).

    seconds_remaining is given only while the device has a session. It is
    rounded down, so a client never waits past the session's real end.
    bytes_remaining is given only for a session with a data quota.
    """
    document: dict[str, Any] = {
        "captive": captive,
        "user-portal-url": user_portal_url,
    }
    if venue_info_url is not None:
        document["venue-info-url"] = venue_info_url
    if not captive:
        document["can-extend-session"] = can_extend_session
        if seconds_remaining is not None:
            document["seconds-remaining"] = int(seconds_remaining)
        if bytes_remaining is not None:
            document["bytes-remaining"] = bytes_remaining
    return document


class CaptiveApi:
    """The API endpoint, bound to one gateway and the portal's URL."""

    def __init__(
        self, gateway: Gateway, settings: ApiSection, user_portal_url: str
    ) -> None:
        self._gateway = gateway
        self._settings = settings
        self._user_portal_url = user_portal_url

    async def endpoint(self, request: Request) -> Response:
        """Return the requesting device's state as application/captive+json."""
        if request.url.scheme != "https":
            # RFC 8908 section 4.1: the API server must be served over TLS.
            return PlainTextResponse(
                "The Captive Portal API is served over HTTPS only.\n", status_code=404
            )
        media_type = negotiate(request.headers.get("accept"))
        if media_type is None:
            return PlainTextResponse(
                f"Not acceptable: this resource is {CAPTIVE_JSON} or "
                "application/json.\n",
                status_code=406,
            )
        body = json.dumps(self._document(request), separators=(",", ":"))
        return Response(body, media_type=media_type, headers={"Vary": "Accept"})

    def _document(self, request: Request) -> dict[str, Any]:
        session = None
        trusted = False
        try:
            device = self._gateway.identify(client_address(request))
            session = self._gateway.session_for(device)
            # The firewall lets a trusted MAC through with no session, and
            # mac_lists.trusted never contains a blocked MAC.
            trusted = device.mac in self._gateway.mac_lists.trusted
        except DeviceNotFound as error:
            # A device the kernel has no neighbour entry for cannot have
            # logged in, so it is captive.
            log.debug("Captive Portal API: %s; responding captive.", error)
        return api_document(
            captive=session is None and not trusted,
            user_portal_url=self._user_portal_url,
            venue_info_url=self._settings.venue_info_url,
            # A trusted device without a session has nothing to extend.
            can_extend_session=self._settings.can_extend_session
            and session is not None,
            seconds_remaining=(
                None if session is None else self._gateway.remaining(session)
            ),
            bytes_remaining=(
                None if session is None else self._gateway.bytes_remaining(session)
            ),
        )
