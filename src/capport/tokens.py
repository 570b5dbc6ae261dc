"""Signed, expiring tokens that carry a captured URL through the portal.

The responder puts the URL a device first asked for into the portal link;
the portal trusts it only if the signature checks and the token is young
enough. Only absolute http and https URLs are ever signed or returned.
"""

from __future__ import annotations

import math
import re
from ipaddress import IPv6Address
from urllib.parse import SplitResult, urlsplit

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from capport.errors import TokenError

MAX_URL_BYTES = 8192

# A DNS name or an IPv4 literal (RFC 3986 reg-name restricted to what
# resolvers accept); anything else in a Host header is not worth returning to.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")


def is_safe_return_url(url: str) -> bool:
    """Tell whether url is an absolute http(s) URL fit to redirect a browser to."""
    if len(url.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES:
        return False
    if _CONTROL_OR_SPACE.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if "@" in parts.netloc:
        # Userinfo makes "http://origin.lab@evil.example/" look like a
        # trusted host while it leads elsewhere; browsers need none here.
        return False
    try:
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return False
    return bool(_HOSTNAME.match(parts.hostname) or _is_ipv6_literal(parts))


def _is_ipv6_literal(parts: SplitResult) -> bool:
    if not parts.netloc.rpartition("@")[2].startswith("["):
        return False
    try:
        IPv6Address(parts.hostname or "")
    except ValueError:
        return False
    return True


class TokenSigner:
    """Signs captured URLs and checks them on the way back."""

    def __init__(self, secret: bytes, lifetime: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="capport.return-url")
        self.lifetime = lifetime

    def sign(self, url: str) -> str:
        if not is_safe_return_url(url):
            raise TokenError(f"refusing to sign {url!r}: not an http(s) URL")
        return self._serializer.dumps(url)

    def verify(self, token: str) -> str:
        """Return the URL inside token, or raise TokenError."""
        if not token:
            raise TokenError("the portal token is empty")
        try:
            url = self._serializer.loads(token, max_age=math.ceil(self.lifetime))
        except SignatureExpired:
            raise TokenError("the portal token has expired") from None
        except BadData:
            raise TokenError("the portal token is invalid") from None
        if not isinstance(url, str) or not is_safe_return_url(url):
            raise TokenError("the portal token does not hold an http(s) URL")
        return url
