"""Deciding which kind of response an intercepted request gets.

The decision is separate from building the bytes so that new kinds of
request (operating-system portal probes, for one) add a case here and a
builder there without touching the connection handling.
"""

from __future__ import annotations

import enum

from capport.intercept.request import InterceptedRequest
from capport.tokens import is_safe_return_url


class Action(enum.Enum):
    """The kind of response a request gets."""

    # 511 Network Authentication Required with a link to the portal.
    CAPTIVE = "captive"
    # 307 back to the captured URL, then close, for a device that logged in
    # while this connection (redirected to the responder before the login)
    # stayed open. The browser's next connection is no longer redirected.
    RETURN = "return"

    @property
    def closes_connection(self) -> bool:
        """Tell whether the connection is closed after this response."""
        return self is Action.RETURN


def classify(request: InterceptedRequest, authorised: bool) -> Action:
    """Choose the response for request; authorised is True once its client logged in."""
    if authorised and _can_return_to(request.captured_url):
        return Action.RETURN
    return Action.CAPTIVE


def _can_return_to(url: str) -> bool:
    # The URL goes into a Location header, which must be ASCII. A captured
    # URL is ASCII once its target is normalised and its host passes
    # is_safe_return_url, so the isascii() check only guards that invariant.
    return url.isascii() and is_safe_return_url(url)
