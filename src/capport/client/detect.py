"""Recognising a captive portal in an HTTP response.

classify() is the decision, on plain values. detect() and detect_async()
take a response of requests, httpx, urllib3 or aiohttp, read what the
decision needs, and return a Portal or None.

The signs, strongest first:

1. 511 Network Authentication Required. RFC 6585 section 6 reserves it for
   intercepting proxies, so it marks a portal whatever the body contains. The body
   names the login page in a meta refresh or a link.
2. A WISPr <WISPAccessGatewayParam> block with a LoginURL, in a 200 or a
   redirect. Only hotspot gateways send it.
3. For a probe, whose expected response is known: a 302, 303 or 307 that sends
   the plain-HTTP request to another host, or a 200 with other content than
   expected and a meta refresh. Without an expectation neither is evidence,
   because ordinary sites redirect to other hosts (example.com to
   www.example.com) and serve pages with a meta refresh.

401, 407 and every other status are left alone: they are the server's or a
proxy's own responses, and the caller's library handles them as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from capport.client.errors import NetworkAuthenticationRequired
from capport.client.pages import (
    absolute_url,
    find_link,
    find_wispr_login_url,
    host_of,
    parse_page,
)
from capport.client.portal import DetectionKind, Expectation, Portal
from capport.client.responses import ResponseParts, aread_parts, read_parts

log = logging.getLogger("capport.client")

# The Link relation some gateways use to point at their RFC 8908 API.
CAPTIVE_PORTAL_RELATION = "captive-portal"
REDIRECT_STATUSES = frozenset({302, 303, 307})
WISPR_STATUSES = REDIRECT_STATUSES | {200}


def classify(
    parts: ResponseParts, expected: Expectation | None = None
) -> Portal | None:
    """Return the portal that parts give away, or None for an ordinary response.

    expected is the response a probe gets on an open network. Without it, only
    a 511 and WISPr XML count as evidence.
    """
    base = parts.request_url
    api_uri = _api_uri(parts)
    text = _text(parts.body)

    if parts.status == 511:
        url = _page_target(text, base) if text else None
        return Portal(DetectionKind.STATUS_511, 511, url, api_uri, base)

    if text and parts.status in WISPR_STATUSES:
        login = find_wispr_login_url(text)
        url = absolute_url(base, login) if login else None
        if url is not None:
            return Portal(DetectionKind.WISPR, parts.status, url, api_uri, base)

    if expected is None or expected.matches(parts.status, parts.body):
        return None

    if parts.status in REDIRECT_STATUSES:
        target = _foreign_redirect(parts)
        if target is not None:
            return Portal(DetectionKind.REDIRECT, parts.status, target, api_uri, base)

    if parts.status == 200 and text:
        refresh, _ = parse_page(text)
        url = absolute_url(base, refresh) if refresh else None
        if url is not None:
            return Portal(DetectionKind.LOGIN_PAGE, 200, url, api_uri, base)
    return None


def detect(
    response: Any,
    expected: Expectation | None = None,
    *,
    request_url: str | None = None,
) -> Portal | None:
    """Return the captive portal that response gives away, or None.

    response is a response of requests, httpx, urllib3 or aiohttp (with its
    body already read), or any object with status_code or status, headers
    and content. expected marks the request as a probe (see classify).
    request_url overrides the URL the response reports, against which
    relative portal links are resolved. For a streamed response, at most
    64 KiB of the body is read, and only for the statuses that need it.
    """
    parts = read_parts(response, expected is not None, request_url)
    return _found(classify(parts, expected))


async def detect_async(
    response: Any,
    expected: Expectation | None = None,
    *,
    request_url: str | None = None,
) -> Portal | None:
    """Return the captive portal that response gives away, awaiting its body.

    The same as detect(), for responses of aiohttp and httpx.AsyncClient
    whose body has not been read yet.
    """
    parts = await aread_parts(response, expected is not None, request_url)
    return _found(classify(parts, expected))


def raise_for_portal(
    response: Any,
    expected: Expectation | None = None,
    *,
    request_url: str | None = None,
) -> None:
    """Raise NetworkAuthenticationRequired if response comes from a captive portal."""
    portal = detect(response, expected, request_url=request_url)
    if portal is not None:
        raise NetworkAuthenticationRequired(portal, response)


async def raise_for_portal_async(
    response: Any,
    expected: Expectation | None = None,
    *,
    request_url: str | None = None,
) -> None:
    """Raise NetworkAuthenticationRequired if response comes from a captive portal."""
    portal = await detect_async(response, expected, request_url=request_url)
    if portal is not None:
        raise NetworkAuthenticationRequired(portal, response)


def _found(portal: Portal | None) -> Portal | None:
    if portal is not None:
        log.debug(
            "Captive portal detected by %s on %s, with login page %s.",
            portal.kind.value,
            portal.request_url,
            portal.url,
        )
    return portal


def _text(body: bytes | None) -> str | None:
    if body is None:
        return None
    # Portal links are ASCII, so a page in another charset still yields
    # them when decoded as UTF-8 with replacement characters.
    return body.decode("utf-8", "replace")


def _page_target(text: str, base: str | None) -> str | None:
    """Return the login page a 511 body names: meta refresh, then links, then WISPr."""
    refresh, links = parse_page(text)
    for target in [refresh, *links]:
        url = absolute_url(base, target) if target else None
        if url is not None:
            return url
    login = find_wispr_login_url(text)
    return absolute_url(base, login) if login else None


def _api_uri(parts: ResponseParts) -> str | None:
    if not parts.link:
        return None
    target = find_link(parts.link, CAPTIVE_PORTAL_RELATION)
    return absolute_url(parts.request_url, target) if target else None


def _foreign_redirect(parts: ResponseParts) -> str | None:
    """Return where a redirect of a plain-HTTP request to another host leads."""
    base = parts.request_url
    if not base or not base.lower().startswith("http://") or not parts.location:
        return None
    target = absolute_url(base, parts.location)
    if target is None or host_of(target) == host_of(base):
        return None
    return target
