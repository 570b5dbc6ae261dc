"""An intercepted HTTP request and the URL the device meant to fetch.

The responder never forwards anything, so all it needs from a request is
its method, its target, its Host header and the connection it came on.
From those it rebuilds the URL the device asked for (the captured URL), the
address the portal sends the person back to after login.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from urllib.parse import quote

from capport.models import IPAddress

# Characters RFC 3986 section 2 allows in a URI, plus "%" for escapes that are
# already there. Browsers percent-encode everything else before sending, so a
# target outside this set comes from another client. It is encoded the same
# way, which keeps the captured URL ASCII and free of markup.
_URI_CHARACTERS = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "-._~:/?#[]@!$&'()*+,;=%"
)
_PLAIN_TARGET = re.compile(rb"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True, slots=True)
class InterceptedRequest:
    """One parsed request, reduced to the values that choosing a response needs.

    http10 is set for an HTTP/1.0 request, whose connection persists only
    if the response contains "Connection: keep-alive".
    """

    method: str
    target: str
    host: str | None
    captured_url: str
    client_ip: IPAddress
    keep_alive: bool
    user_agent: str | None = None
    http10: bool = False

    @property
    def is_head(self) -> bool:
        return self.method == "HEAD"


def parse_request(
    method: bytes,
    target: bytes,
    host: bytes | None,
    client_ip: IPAddress,
    keep_alive: bool,
    destination: Callable[[], str],
    user_agent: bytes | None = None,
    http10: bool = False,
) -> InterceptedRequest:
    """Build an InterceptedRequest from the raw values the parser produced.

    destination returns the authority the connection was addressed to; it is
    called only for a request that names no host itself.
    """
    normalised = normalise_target(target)
    host_text = decode_host(host) if host is not None else None
    return InterceptedRequest(
        method=method.decode("ascii", "replace"),
        target=normalised,
        host=host_text,
        captured_url=capture_url(normalised, host_text, destination),
        client_ip=client_ip,
        keep_alive=keep_alive,
        user_agent=(user_agent.decode("latin-1") if user_agent is not None else None),
        http10=http10,
    )


def normalise_target(target: bytes) -> str:
    """Percent-encode every byte of target that RFC 3986 does not allow."""
    if _PLAIN_TARGET.fullmatch(target):
        return target.decode("ascii")
    return quote(target, safe=_URI_CHARACTERS)


def decode_host(host: bytes) -> str:
    """Decode a Host header value; invalid UTF-8 becomes U+FFFD."""
    return host.decode("utf-8", "replace").strip(" \t")


def capture_url(target: str, host: str | None, destination: Callable[[], str]) -> str:
    """Rebuild the URL the device asked for.

    An absolute-form target (a request written for a proxy) is the URL
    itself, and RFC 9112 section 3.2.2 requires ignoring Host then. Otherwise
    the authority is the Host header, or the address the connection was
    made to when the header is missing or empty (HTTP/1.0 clients).
    """
    if _ABSOLUTE_FORM.match(target):
        return target
    authority = host or destination()
    if target.startswith("/"):
        return f"http://{authority}{target}"
    # The asterisk form ("OPTIONS *") and the authority form (CONNECT) name
    # no resource, so the device is sent back to the site's root.
    return f"http://{authority}/"


def format_authority(ip: IPAddress, port: int) -> str:
    """Write ip and port as a URL authority; IPv6 is bracketed, port 80 left out."""
    host = f"[{ip}]" if isinstance(ip, IPv6Address) else str(ip)
    if port == 80:
        return host
    return f"{host}:{port}"
