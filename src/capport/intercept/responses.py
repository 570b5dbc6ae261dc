"""The bytes of every response the intercepting responder sends.

Pure apart from reading the clock: no sockets, no logging. The constant parts
of each response are built once, and the variable ones (Date, the signed
portal link) are cached for the current second, because the responder has to
keep up with a web server that sends a fixed 511.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from html import escape

from capport.errors import TokenError
from capport.intercept import proberesponses
from capport.intercept.actions import Action
from capport.intercept.request import InterceptedRequest
from capport.probes import ProbeEntry
from capport.tokens import TokenSigner

# Reason phrases as RFC 9110 section 15 and RFC 6585 name them.
REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    511: "Network Authentication Required",
}

# The statuses error() builds; each closes the connection.
ERROR_STATUSES = (400, 408, 413, 414, 431, 500, 503)

# A device may send any URL, so the page quotes at most this many characters
# of it; the signed link always carries the whole URL.
MAX_SHOWN_URL_CHARS = 2000

# RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue" waits
# for this interim response before sending the request body.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_HTML_TYPE = b"Content-Type: text/html; charset=utf-8\r\n"
_TEXT_TYPE = b"Content-Type: text/plain; charset=utf-8\r\n"
_NO_STORE = b"Cache-Control: no-store\r\n"
_CLOSE = b"Connection: close\r\n\r\n"

_CAPTIVE_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="0; url={link}">
<title>Network login required</title>
</head>
<body>
<h1>Network login required</h1>
{request_sentence}<p><a href="{link}">Log in to this network</a> to continue.</p>
</body>
</html>
"""

_REQUEST_SENTENCE = (
    "<p>This network needs you to log in before it can load <code>{url}</code>.</p>\n"
)

_RETURN_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Continue</title>
</head>
<body>
<p>You are logged in. Continue to <a href="{url}">{url}</a>.</p>
</body>
</html>
"""


def status_line(status: int) -> bytes:
    """Return the HTTP/1.1 status line for status, with its CRLF."""
    return f"HTTP/1.1 {status} {REASONS[status]}\r\n".encode("ascii")


def render_captive_page(link: str, requested_url: str | None) -> str:
    """Render the 511 page: a meta refresh and a link to link.

    requested_url, when given, is quoted in a sentence that tells the person
    which address was held back. Both values are HTML-escaped here.
    """
    sentence = ""
    if requested_url:
        shown = requested_url
        if len(shown) > MAX_SHOWN_URL_CHARS:
            shown = shown[:MAX_SHOWN_URL_CHARS] + "\u2026"
        sentence = _REQUEST_SENTENCE.format(url=escape(shown, quote=True))
    return _CAPTIVE_PAGE.format(
        link=escape(link, quote=True), request_sentence=sentence
    )


def render_return_page(url: str) -> str:
    """Render the body of the 307 that sends a logged-in device back to url."""
    return _RETURN_PAGE.format(url=escape(url, quote=True))


class ResponseBuilder:
    """Builds the responder's responses as complete HTTP/1.1 messages.

    portal_url is the portal's base URL, ending in "/"; the link in a 511 is
    portal_url plus "?t=" and a token that signer made from the captured URL.
    clock returns Unix time; it dates responses and keys the caches.
    """

    def __init__(
        self,
        portal_url: str,
        signer: TokenSigner,
        clock: Callable[[], float] = time.time,
        cache_size: int = 256,
    ) -> None:
        self._portal_url = portal_url
        self._link_prefix = portal_url + ("&t=" if "?" in portal_url else "?t=")
        self._signer = signer
        self._clock = clock
        self._cache_size = cache_size
        self._second = -1
        self._date = b""
        self._pages: dict[str, bytes] = {}
        self._errors = {status: _error_parts(status) for status in ERROR_STATUSES}
        self._captive_status = status_line(511)
        self._return_status = status_line(307)

    def build(
        self,
        request: InterceptedRequest,
        action: Action,
        probe: ProbeEntry | None = None,
    ) -> bytes:
        """Return the response to request for the action classify chose.

        probe is the entry classify was given; PROBE_SUCCESS requires it.
        """
        if action is Action.RETURN:
            return self.return_to(request)
        if action is Action.PROBE_REDIRECT:
            rest = proberesponses.redirect_to_portal(
                self._portal_url, _connection(request), request.is_head
            )
            return status_line(302) + self._date_header() + rest
        if action is Action.PROBE_SUCCESS and probe is not None:
            rest = proberesponses.expected_response(
                probe, _connection(request), request.is_head
            )
            return status_line(probe.status) + self._date_header() + rest
        return self.captive(request)

    def captive(self, request: InterceptedRequest) -> bytes:
        """Return the 511 for request, with the portal link and meta refresh."""
        date = self._date_header()
        page = self._pages.get(request.captured_url)
        if page is None:
            page = self._captive_page(request.captured_url)
        return b"".join(
            (
                self._captive_status,
                date,
                _HTML_TYPE,
                _NO_STORE,
                b"Content-Length: %d\r\n" % len(page),
                _connection(request),
                b"" if request.is_head else page,
            )
        )

    def return_to(self, request: InterceptedRequest) -> bytes:
        """Return a 307 to the captured URL that closes the connection.

        The caller must have checked that the captured URL is safe, as
        classify does before it chooses Action.RETURN.
        """
        url = request.captured_url
        page = render_return_page(url).encode("utf-8")
        return b"".join(
            (
                self._return_status,
                self._date_header(),
                b"Location: %s\r\n" % url.encode("ascii"),
                _HTML_TYPE,
                _NO_STORE,
                b"Content-Length: %d\r\n" % len(page),
                _CLOSE,
                b"" if request.is_head else page,
            )
        )

    def error(self, status: int, head_only: bool = False) -> bytes:
        """Return a short plain-text error response that closes the connection."""
        head, body = self._errors[status]
        return b"".join(
            (head[0], self._date_header(), head[1], b"" if head_only else body)
        )

    def portal_link(self, captured_url: str) -> str:
        """Return the portal URL with a token for captured_url, or bare if unsafe."""
        try:
            # sign() checks is_safe_return_url itself and raises TokenError
            # for a URL that fails it, so the URL is checked only once.
            token = self._signer.sign(captured_url)
        except TokenError:
            return self._portal_url
        return self._link_prefix + token

    def _captive_page(self, captured_url: str) -> bytes:
        link = self.portal_link(captured_url)
        page = render_captive_page(link, captured_url).encode("utf-8")
        if len(self._pages) >= self._cache_size:
            # Dicts keep insertion order, so this evicts the oldest entry.
            del self._pages[next(iter(self._pages))]
        self._pages[captured_url] = page
        return page

    def _date_header(self) -> bytes:
        second = int(self._clock())
        if second != self._second:
            # The token in a portal link embeds the second it was signed in,
            # so cached pages are only reused within one second.
            self._second = second
            self._date = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()
            self._pages.clear()
        return self._date


def _connection(request: InterceptedRequest) -> bytes:
    return proberesponses.connection_lines(request.keep_alive, request.http10)


def _error_parts(status: int) -> tuple[tuple[bytes, bytes], bytes]:
    """Split an error response into (status line, headers after Date), body."""
    body = f"{status} {REASONS[status]}\n".encode("ascii")
    after_date = b"".join(
        (_TEXT_TYPE, _NO_STORE, b"Content-Length: %d\r\n" % len(body), _CLOSE)
    )
    return (status_line(status), after_date), body
