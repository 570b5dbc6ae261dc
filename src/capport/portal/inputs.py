"""Request inputs the portal reads: client address, Origin header and form.

The device is identified from the connection alone. Form values never name
a MAC or IP address, and the views never read one from them.
"""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import ClientDisconnect, Request

from capport.errors import DeviceNotFound
from capport.models import IPAddress
from capport.portal.errorpages import PageError

# The largest legitimate body is the Accept form: a CSRF token plus a return
# token that contains a URL of at most 8 KiB in base64.
MAX_FORM_BYTES = 32 * 1024
MAX_FORM_FIELDS = 16

Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def client_address(request: Request) -> IPAddress:
    """Return the IP address of the connection's peer, as the socket saw it."""
    if request.client is None:
        raise DeviceNotFound(
            "the connection has no client IP address; serve the portal over TCP"
        )
    host = request.client.host
    try:
        address = ip_address(host)
    except ValueError:
        raise DeviceNotFound(
            f"the client address {host!r} is not an IP address"
        ) from None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d, but the
    # neighbour table and the firewall store them by their IPv4 address.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_origin(value: str) -> Origin | None:
    """Return (scheme, host, port) of an http(s) origin or URL, or None."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def request_origin(request: Request) -> Origin | None:
    """Return the origin the client addressed: its scheme and Host header."""
    url = request.url
    try:
        hostname, port = url.hostname, url.port
    except ValueError:
        # An unparseable Host header (a bad port, an unclosed "[") matches
        # no origin at all.
        return None
    if url.scheme not in _DEFAULT_PORTS or not hostname:
        return None
    return url.scheme, hostname.lower(), port or _DEFAULT_PORTS[url.scheme]


def is_same_origin(request: Request, configured: Origin | None) -> bool:
    """Tell whether the Origin header, if any, is this portal's origin.

    Browsers send Origin with every cross-site POST, so a foreign or opaque
    ("null") one is rejected. A request without it passes, and the CSRF
    token must then stop forgeries. Both the origin the client addressed and
    the configured portal URL count as this portal.
    """
    values = request.headers.getlist("origin")
    if not values:
        return True
    if len(values) > 1:
        return False
    origin = parse_origin(values[0])
    if origin is None:
        return False
    return origin in (request_origin(request), configured)


async def read_form(request: Request) -> dict[str, str]:
    """Read a URL-encoded form body of bounded size into a dict.

    The first value of a repeated name wins. A body of another media type
    yields an empty form, so the CSRF check rejects it.
    """
    body = await _read_body(request, MAX_FORM_BYTES)
    media_type = request.headers.get("content-type", "").partition(";")[0]
    if media_type.strip().lower() != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        raise PageError(400, "The form has too many fields.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PageError(413)
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PageError(413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise PageError(400, "The request body ended early.") from None
    return b"".join(chunks)
