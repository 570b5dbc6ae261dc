"""Deciding which kind of response an intercepted request gets.

The decision is separate from building the bytes so that new kinds of
request (operating-system portal probes, for one) add a case here and a
builder there without touching the connection handling.
"""

from __future__ import annotations

import enum

from capport.intercept.request import InterceptedRequest
from capport.probes import BeforeLogin, ProbeEntry
from capport.tokens import is_safe_return_url


class Action(enum.Enum):
    """The kind of response a request gets."""

    # 511 Network Authentication Required with a link to the portal.
    CAPTIVE = "captive"
    # 307 back to the captured URL, then close, for a device that logged in
    # while this connection (redirected to the responder before the login)
    # stayed open. The browser's next connection is no longer redirected.
    RETURN = "return"
    # 302 to the portal for an operating system's portal probe, which some
    # systems read as a portal where they read 511 as no connectivity.
    PROBE_REDIRECT = "probe-redirect"
    # The probe's expected answer (Apple's "Success" page, a 204, ...) for a
    # device that logged in, when the entry sets answer_after_login.
    PROBE_SUCCESS = "probe-success"

    @property
    def closes_connection(self) -> bool:
        """Tell whether the connection is closed after this response."""
        return self is Action.RETURN


def classify(
    request: InterceptedRequest, authorised: bool, probe: ProbeEntry | None = None
) -> Action:
    """Choose the response for request; authorised is True once its client logged in.

    probe is the probe-table entry the request matched, if any.
    """
    if probe is not None:
        return _classify_probe(request, authorised, probe)
    if authorised and _can_return_to(request.captured_url):
        return Action.RETURN
    return Action.CAPTIVE


def _classify_probe(
    request: InterceptedRequest, authorised: bool, probe: ProbeEntry
) -> Action:
    if authorised and probe.answer_after_login:
        return Action.PROBE_SUCCESS
    if authorised:
        # The device's next connection is forwarded to the real host.
        return Action.RETURN if _can_return_to(request.captured_url) else Action.CAPTIVE
    if probe.before_login is BeforeLogin.REDIRECT:
        return Action.PROBE_REDIRECT
    return Action.CAPTIVE


def _can_return_to(url: str) -> bool:
    # The URL goes into a Location header, which must be ASCII. A captured
    # URL is ASCII once its target is normalised and its host passes
    # is_safe_return_url, so the isascii() check only guards that invariant.
    return url.isascii() and is_safe_return_url(url)
