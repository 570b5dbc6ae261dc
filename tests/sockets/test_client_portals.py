"""Detection over real loopback connections, for every supported library.

PortalServer imitates the portal styles seen in the field and the ordinary
errors that must not be taken for one. It listens on 127.0.0.1; its
"foreign" login host is 127.0.0.2, which is loopback too, so nothing here
leaves the machine even if a client followed a redirect.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3

from capport.client import DetectionKind, Expectation, Portal, detect, detect_async

PROBE_BODY = b"probe-ok"
PROBE = Expectation(200, PROBE_BODY)
CONTENT = b"the real content"


class PortalServer:
    """A loopback HTTP server with one path per portal style.

    is_open switches /gated and /probe from a 511 to their real responses,
    as a login would. requests counts the requests per path.
    """

    def __init__(self) -> None:
        self.is_open = False
        self.requests: collections.Counter[str] = collections.Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.2:{self.port}/portal?t=abc&x=1"

    def url(self, path: str) -> str:
        return self.base + path

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests[path]

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests[path] += 1
            self.headers[path] = headers

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def captive_page(self) -> bytes:
        link = self.portal_url.replace("&", "&amp;")
        return (
            "<!DOCTYPE html><html><head>"
            f'<meta http-equiv="refresh" content="0; url={link}">'
            f'</head><body><a href="{link}">Log in</a></body></html>'
        ).encode()

    def wispr_page(self) -> bytes:
        login = self.portal_url.replace("&", "&amp;")
        return (
            "<html><!--\n<WISPAccessGatewayParam><Redirect>"
            f"<AccessProcedure>1.0</AccessProcedure><LoginURL>{login}</LoginURL>"
            "</Redirect></WISPAccessGatewayParam>\n--></html>"
        ).encode()

    def response_for(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """Return the status, headers and body for path."""
        html = {"Content-Type": "text/html; charset=utf-8"}
        text = {"Content-Type": "text/plain"}
        if path == "/511":
            return 511, {**html, "Cache-Control": "no-store"}, self.captive_page()
        if path == "/511-big":
            return 511, html, self.captive_page() + b" " * (1024 * 1024)
        if path in ("/gated", "/probe"):
            if not self.is_open:
                return 511, html, self.captive_page()
            return 200, text, PROBE_BODY if path == "/probe" else CONTENT
        if path == "/redirect":
            return 302, {"Location": self.portal_url}, b""
        if path == "/login-page":
            body = b'<html><meta http-equiv="refresh" content="0; url=/login"></html>'
            return 200, html, body
        if path == "/wispr":
            return 302, {**html, "Location": "/wispr-next"}, self.wispr_page()
        if path == "/401":
            return 401, {**text, "WWW-Authenticate": 'Basic realm="x"'}, b"no"
        if path == "/407":
            return 407, {**text, "Proxy-Authenticate": 'Basic realm="x"'}, b"no"
        if path == "/500":
            return 500, html, self.captive_page()
        if path == "/503":
            return 503, {**html, "Retry-After": "0"}, self.captive_page()
        return 404, text, b"not found"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that stop reading a large body reset the connection;
        # socketserver would print the traceback of each.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: PortalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.record(path, {k.lower(): v for k, v in self.headers.items()})
            status, headers, body = server.response_for(path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # Clients that stop reading a large body close the connection.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_portal_server() -> Iterator[PortalServer]:
    """Start a PortalServer for the block and stop it afterwards."""
    server = PortalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def portal_server() -> Iterator[PortalServer]:
    with running_portal_server() as server:
        yield server


# One detection per library, each sending a real request without
# following redirects.


def detect_with_requests(url: str, expected: Expectation | None) -> Portal | None:
    with requests.Session() as session:
        response = session.get(url, allow_redirects=False, timeout=5)
        return detect(response, expected)


def detect_with_requests_stream(
    url: str, expected: Expectation | None
) -> Portal | None:
    with requests.Session() as session:
        response = session.get(url, allow_redirects=False, stream=True, timeout=5)
        with response:
            return detect(response, expected)


def detect_with_httpx(url: str, expected: Expectation | None) -> Portal | None:
    with httpx.Client(timeout=5) as client:
        return detect(client.get(url), expected)


def detect_with_httpx_async(url: str, expected: Expectation | None) -> Portal | None:
    async def run() -> Portal | None:
        async with httpx.AsyncClient(timeout=5) as client:
            request = client.build_request("GET", url)
            response = await client.send(request, stream=True)
            try:
                return await detect_async(response, expected)
            finally:
                await response.aclose()

    return asyncio.run(run())


def detect_with_urllib3(url: str, expected: Expectation | None) -> Portal | None:
    with urllib3.PoolManager() as pool:
        response = pool.request(
            "GET", url, redirect=False, retries=False, preload_content=False
        )
        try:
            return detect(response, expected)
        finally:
            response.release_conn()


def detect_with_aiohttp(url: str, expected: Expectation | None) -> Portal | None:
    async def run() -> Portal | None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            return await detect_async(response, expected)

    return asyncio.run(run())


LIBRARIES = pytest.mark.parametrize(
    "detect_with",
    [
        detect_with_requests,
        detect_with_requests_stream,
        detect_with_httpx,
        detect_with_httpx_async,
        detect_with_urllib3,
        detect_with_aiohttp,
    ],
    ids=["requests", "requests-stream", "httpx", "httpx-async", "urllib3", "aiohttp"],
)


@LIBRARIES
def test_511_gives_portal_url(portal_server: PortalServer, detect_with: Any) -> None:
    portal = detect_with(portal_server.url("/511"), None)
    assert portal is not None
    assert portal.kind is DetectionKind.STATUS_511
    assert portal.url == portal_server.portal_url


@LIBRARIES
def test_large_511_body_capped(portal_server: PortalServer, detect_with: Any) -> None:
    portal = detect_with(portal_server.url("/511-big"), None)
    assert portal is not None
    assert portal.url == portal_server.portal_url


@LIBRARIES
def test_foreign_redirect_of_probe(
    portal_server: PortalServer, detect_with: Any
) -> None:
    portal = detect_with(portal_server.url("/redirect"), PROBE)
    assert portal is not None
    assert portal.kind is DetectionKind.REDIRECT
    assert portal.url == portal_server.portal_url


@LIBRARIES
def test_login_page_for_probe(portal_server: PortalServer, detect_with: Any) -> None:
    portal = detect_with(portal_server.url("/login-page"), PROBE)
    assert portal is not None
    assert portal.kind is DetectionKind.LOGIN_PAGE
    assert portal.url == portal_server.url("/login")


@LIBRARIES
def test_wispr_redirect(portal_server: PortalServer, detect_with: Any) -> None:
    portal = detect_with(portal_server.url("/wispr"), None)
    assert portal is not None
    assert portal.kind is DetectionKind.WISPR
    assert portal.url == portal_server.portal_url


@LIBRARIES
@pytest.mark.parametrize("path", ["/401", "/407", "/500", "/503"])
def test_errors_are_not_portals(
    portal_server: PortalServer, detect_with: Any, path: str
) -> None:
    assert detect_with(portal_server.url(path), None) is None
    assert detect_with(portal_server.url(path), PROBE) is None


@LIBRARIES
def test_open_probe_not_portal(portal_server: PortalServer, detect_with: Any) -> None:
    portal_server.is_open = True
    assert detect_with(portal_server.url("/probe"), PROBE) is None
