"""Stateless CSRF tokens for the portal's forms.

A token is "<issued>.<mac>": the Unix time it was issued and an HMAC-SHA256
over that time and the client's IP address. The portal stores nothing and
sets no cookie. A page from another site cannot read the token, and a token
taken from one device is useless at another address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

DEFAULT_LIFETIME = 4 * 3600.0

# A token issued slightly "in the future" is accepted, because the wall clock
# may be stepped back by NTP between issuing a form and submitting it.
CLOCK_SKEW = 300.0

# Unix times fit in 12 decimal digits until the year 33658.
_MAX_TIME_DIGITS = 12


class CsrfTokens:
    """Issues and checks CSRF tokens bound to a client IP address."""

    def __init__(
        self,
        secret: bytes,
        lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the CSRF secret is empty: pass the gateway's signing key")
        # Derive a key of its own, so a CSRF MAC can never double as a
        # signature made elsewhere with the same gateway secret.
        self._key = hmac.new(secret, b"capport.portal.csrf", hashlib.sha256).digest()
        self._lifetime = lifetime
        self._clock = clock

    def issue(self, client_ip: str) -> str:
        """Return a new token for forms served to client_ip."""
        issued = str(int(self._clock()))
        return f"{issued}.{self._mac(issued, client_ip)}"

    def is_valid(self, token: str, client_ip: str) -> bool:
        """Tell whether token was issued by this gateway to client_ip and is fresh."""
        issued, dot, mac = token.partition(".")
        if not dot or not issued.isascii() or not issued.isdigit():
            return False
        if len(issued) > _MAX_TIME_DIGITS:
            return False
        age = self._clock() - int(issued)
        if age > self._lifetime or age < -CLOCK_SKEW:
            return False
        expected = self._mac(issued, client_ip)
        return hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace"))

    def _mac(self, issued: str, client_ip: str) -> str:
        message = f"{issued}|{client_ip}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
