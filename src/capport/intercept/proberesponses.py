"""The responder's responses to operating-system portal probes.

Pure: each function returns the bytes of a response after its status line
and Date header, so the builder can add the Date of the current second.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from capport.probes import ProbeEntry

_NO_STORE = b"Cache-Control: no-store\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n\r\n"
_CLOSE = b"Connection: close\r\n\r\n"
_END_OF_HEAD = b"\r\n"

_REDIRECT_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Network login required</title></head>
<body><p><a href="{link}">Log in to this network</a> to continue.</p></body>
</html>
"""


def redirect_to_portal(portal_url: str, connection: bytes, head_only: bool) -> bytes:
    """Return the headers and body of a 302 Found to the portal's start page.

    connection is what connection_lines returned for the request.

    The link carries no return token: the probe's URL is no page to send a
    person back to after login.
    """
    page = _REDIRECT_PAGE.format(link=escape(portal_url, quote=True)).encode()
    # A Location header must be ASCII, but portal.url may contain Unicode.
    # Percent-encoding keeps the header valid, and a host written in
    # punycode in portal.url passes unchanged.
    location = quote(portal_url, safe=":/?#[]@!$&'()*+,;=%~")
    return b"".join(
        (
            b"Location: %s\r\n" % location.encode("ascii"),
            b"Content-Type: text/html; charset=utf-8\r\n",
            _NO_STORE,
            b"Content-Length: %d\r\n" % len(page),
            connection,
            b"" if head_only else page,
        )
    )


def expected_response(probe: ProbeEntry, connection: bytes, head_only: bool) -> bytes:
    """Return the headers and body the probe's real host sends when online.

    connection is what connection_lines returned for the request.

    RFC 9110 section 8.6 forbids Content-Length in a 204, and a 204 has no
    body. no-store keeps a device from reusing the answer after its session
    has ended.
    """
    if probe.status == 204:
        return _NO_STORE + connection
    body = probe.success_body
    return b"".join(
        (
            b"Content-Type: %s\r\n" % probe.content_type.encode("ascii"),
            _NO_STORE,
            b"Content-Length: %d\r\n" % len(body),
            connection,
            b"" if head_only else body,
        )
    )


def connection_lines(keep_alive: bool, http10: bool) -> bytes:
    """Return the Connection header a response needs and the blank line after it.

    RFC 9112 section 9.3: an HTTP/1.1 connection persists unless a message
    contains "close", so a response that keeps it open needs no header. An
    HTTP/1.0 client keeps the connection only if the response contains
    "keep-alive".
    """
    if not keep_alive:
        return _CLOSE
    return _KEEP_ALIVE if http10 else _END_OF_HEAD
