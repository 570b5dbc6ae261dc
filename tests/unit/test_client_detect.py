"""Detection on canned responses of requests, httpx and urllib3.

aiohttp responses cannot be built without a connection; the loopback tests
in tests/sockets cover them.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from capport.client import (
    DetectionKind,
    Expectation,
    NetworkAuthenticationRequired,
    classify,
    detect,
    raise_for_portal,
)
from capport.client.responses import MAX_BODY_BYTES, ResponseParts

REQUEST_URL = "http://origin.test/path/page"
PORTAL_LINK = "http://192.0.2.1/?t=abc&x=1"
CAPTIVE_PAGE = (
    b"<!DOCTYPE html><html><head>"
    b'<meta http-equiv="refresh" content="0; url=http://192.0.2.1/?t=abc&amp;x=1">'
    b'</head><body><a href="http://192.0.2.1/?t=abc&amp;x=1">Log in</a>'
    b"</body></html>"
)
LOGIN_PAGE = b'<html><meta http-equiv="refresh" content="0; url=/login"></html>'
WISPR_PAGE = (
    b"<html><!-- <WISPAccessGatewayParam><Redirect>"
    b"<LoginURL>https://login.hotspot.test/?a=1&amp;b=2</LoginURL>"
    b"</Redirect></WISPAccessGatewayParam> --></html>"
)
PROBE = Expectation(200, b"probe-ok")


# Builders of real response objects of each library


def requests_response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = REQUEST_URL
    response._content = body
    return response


def httpx_response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        content=body,
        request=httpx.Request("GET", REQUEST_URL),
    )


def urllib3_response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers=headers,
        status=status,
        request_url=REQUEST_URL,
        preload_content=False,
    )


Builder = Callable[..., Any]
BUILDERS = pytest.mark.parametrize(
    "build",
    [requests_response, httpx_response, urllib3_response],
    ids=["requests", "httpx", "urllib3"],
)


# 511


@BUILDERS
def test_511_portal_url_from_refresh(build: Builder) -> None:
    portal = detect(build(511, CAPTIVE_PAGE))
    assert portal is not None
    assert portal.kind is DetectionKind.STATUS_511
    assert portal.url == PORTAL_LINK
    assert portal.status == 511
    assert portal.request_url == REQUEST_URL


@BUILDERS
def test_511_portal_url_from_link_only(build: Builder) -> None:
    portal = detect(build(511, b'<p><a href="/portal/">log in</a></p>'))
    assert portal is not None
    assert portal.url == "http://origin.test/portal/"


@BUILDERS
def test_511_without_body_still_portal(build: Builder) -> None:
    portal = detect(build(511))
    assert portal is not None
    assert portal.url is None


@BUILDERS
def test_511_api_uri_from_link_header(build: Builder) -> None:
    headers = {"Link": '<https://api.test/capport>; rel="captive-portal"'}
    portal = detect(build(511, CAPTIVE_PAGE, headers))
    assert portal is not None
    assert portal.api_uri == "https://api.test/capport"


@BUILDERS
def test_511_without_link_header_has_no_api(build: Builder) -> None:
    portal = detect(build(511, CAPTIVE_PAGE))
    assert portal is not None
    assert portal.api_uri is None


@BUILDERS
def test_511_javascript_refresh_ignored(build: Builder) -> None:
    body = (
        b'<meta http-equiv="refresh" content="0; url=javascript:alert(1)">'
        b'<a href="https://portal.test/">in</a>'
    )
    portal = detect(build(511, body))
    assert portal is not None
    assert portal.url == "https://portal.test/"


# Other statuses stay what they are


@BUILDERS
@pytest.mark.parametrize("status", [401, 403, 407, 500, 502, 503])
def test_error_status_not_portal(build: Builder, status: int) -> None:
    assert detect(build(status, CAPTIVE_PAGE)) is None


@BUILDERS
@pytest.mark.parametrize("status", [401, 407, 500, 503])
def test_error_status_not_portal_for_probe(build: Builder, status: int) -> None:
    assert detect(build(status, CAPTIVE_PAGE), PROBE) is None


@BUILDERS
def test_ordinary_page_not_portal(build: Builder) -> None:
    assert detect(build(200, b"<html>hello</html>")) is None


# Redirects


@BUILDERS
def test_foreign_redirect_of_probe_is_portal(build: Builder) -> None:
    response = build(302, b"", {"Location": "http://login.hotspot.test/?from=x"})
    portal = detect(response, PROBE)
    assert portal is not None
    assert portal.kind is DetectionKind.REDIRECT
    assert portal.url == "http://login.hotspot.test/?from=x"


@BUILDERS
def test_foreign_redirect_without_probe_ignored(build: Builder) -> None:
    response = build(302, b"", {"Location": "http://www.origin.test/"})
    assert detect(response) is None


@BUILDERS
@pytest.mark.parametrize("status", [303, 307])
def test_other_redirect_statuses_count(build: Builder, status: int) -> None:
    response = build(status, b"", {"Location": "http://login.hotspot.test/"})
    portal = detect(response, PROBE)
    assert portal is not None
    assert portal.status == status


@BUILDERS
def test_same_host_redirect_not_portal(build: Builder) -> None:
    response = build(302, b"", {"Location": "/elsewhere"})
    assert detect(response, PROBE) is None


def test_redirect_of_https_request_not_portal() -> None:
    parts = ResponseParts(
        302, "https://origin.test/", location="https://login.hotspot.test/"
    )
    assert classify(parts, PROBE) is None


def test_permanent_redirect_not_portal() -> None:
    parts = ResponseParts(301, REQUEST_URL, location="http://login.hotspot.test/")
    assert classify(parts, PROBE) is None


# Login pages and WISPr


@BUILDERS
def test_login_page_instead_of_probe_answer(build: Builder) -> None:
    portal = detect(build(200, LOGIN_PAGE), PROBE)
    assert portal is not None
    assert portal.kind is DetectionKind.LOGIN_PAGE
    assert portal.url == "http://origin.test/login"


@BUILDERS
def test_login_page_without_probe_ignored(build: Builder) -> None:
    assert detect(build(200, LOGIN_PAGE)) is None


@BUILDERS
def test_expected_probe_answer_not_portal(build: Builder) -> None:
    body = b'probe-ok <meta http-equiv="refresh" content="0; url=/x">'
    assert detect(build(200, body), PROBE) is None


@BUILDERS
def test_wispr_in_redirect(build: Builder) -> None:
    response = build(302, WISPR_PAGE, {"Location": "/x"})
    portal = detect(response)
    assert portal is not None
    assert portal.kind is DetectionKind.WISPR
    assert portal.url == "https://login.hotspot.test/?a=1&b=2"


@BUILDERS
def test_wispr_in_probe_answer(build: Builder) -> None:
    portal = detect(build(200, WISPR_PAGE), PROBE)
    assert portal is not None
    assert portal.kind is DetectionKind.WISPR


# The exception


@BUILDERS
def test_raise_for_portal_carries_portal(build: Builder) -> None:
    response = build(511, CAPTIVE_PAGE)
    with pytest.raises(NetworkAuthenticationRequired) as caught:
        raise_for_portal(response)
    assert caught.value.portal_url == PORTAL_LINK
    assert caught.value.api_uri is None
    assert caught.value.response is response


def test_error_is_no_library_error() -> None:
    error_type = NetworkAuthenticationRequired
    assert not issubclass(error_type, requests.RequestException)
    assert not issubclass(error_type, httpx.HTTPError)
    assert not issubclass(error_type, urllib3.exceptions.HTTPError)
    assert not issubclass(error_type, OSError)


def test_error_message_names_login_page() -> None:
    with pytest.raises(NetworkAuthenticationRequired, match="login at http://192"):
        raise_for_portal(httpx_response(511, CAPTIVE_PAGE))


# Reading bodies


def test_requests_streamed_body_capped_and_kept() -> None:
    response = requests_response(511)
    response._content = False
    body = CAPTIVE_PAGE + b" " * (2 * MAX_BODY_BYTES)
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), status=511, preload_content=False
    )
    portal = detect(response)
    assert portal is not None
    assert portal.url == PORTAL_LINK
    assert len(response.content) == MAX_BODY_BYTES


def test_requests_short_streamed_body_complete() -> None:
    response = requests_response(511)
    response._content = False
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(CAPTIVE_PAGE), status=511, preload_content=False
    )
    detect(response)
    assert response.content == CAPTIVE_PAGE


class ChunkStream(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += len(chunk)
            yield chunk


def test_httpx_streamed_body_capped() -> None:
    stream = ChunkStream([CAPTIVE_PAGE] + [b" " * 16384] * 64)
    response = httpx.Response(
        511, stream=stream, request=httpx.Request("GET", REQUEST_URL)
    )
    portal = detect(response)
    assert portal is not None
    assert stream.sent < MAX_BODY_BYTES + 2 * 16384
    assert len(response.content) == MAX_BODY_BYTES
    assert response.is_closed


def test_httpx_ok_body_not_read() -> None:
    stream = ChunkStream([b"large download"])
    response = httpx.Response(
        200, stream=stream, request=httpx.Request("GET", REQUEST_URL)
    )
    assert detect(response) is None
    assert stream.sent == 0


def test_urllib3_body_stays_readable() -> None:
    response = urllib3_response(511, CAPTIVE_PAGE)
    detect(response)
    assert response.data == CAPTIVE_PAGE


def test_async_httpx_body_needs_detect_async() -> None:
    class AsyncStream(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield CAPTIVE_PAGE

    response = httpx.Response(
        511, stream=AsyncStream(), request=httpx.Request("GET", REQUEST_URL)
    )
    with pytest.raises(TypeError, match="detect_async"):
        detect(response)


def test_request_url_override_resolves_links() -> None:
    response = httpx.Response(511, content=b'<a href="/p">in</a>')
    portal = detect(response, request_url="http://gw.test/x")
    assert portal is not None
    assert portal.url == "http://gw.test/p"


def test_generic_object_detected() -> None:
    class Plain:
        status = 511
        headers = [("Content-Type", "text/html")]
        body = CAPTIVE_PAGE.decode()
        url = REQUEST_URL

    portal = detect(Plain())
    assert portal is not None
    assert portal.url == PORTAL_LINK


def test_object_without_status_rejected() -> None:
    with pytest.raises(TypeError, match="cannot read an HTTP status"):
        detect(object())


def test_library_imports_without_http_libraries() -> None:
    """capport.client imports and detects with no HTTP library importable."""
    program = (
        "import sys\n"
        "for name in ('requests', 'httpx', 'urllib3', 'aiohttp'):\n"
        "    sys.modules[name] = None\n"
        "import capport.client as c\n"
        "class R:\n"
        "    status_code = 511\n"
        "    headers = {}\n"
        "    content = b'<a href=\"http://p.test/\">x</a>'\n"
        "    url = 'http://o.test/'\n"
        "print(c.detect(R()).url)\n"
        "import capport.client.commands\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://p.test/"


# Expectations


@pytest.mark.parametrize(
    "expectation, status, body, matches",
    [
        (Expectation(200, b"online"), 200, b"online\n", True),
        (Expectation(200, b"online"), 200, b"offline", False),
        (Expectation(200, b"online"), 302, b"online", False),
        (Expectation(204, b""), 204, b"", True),
        (Expectation(200, b""), 204, b"", True),
        (Expectation(200, b""), 200, b"", True),
        (Expectation(200, b""), 200, b"text", False),
        (Expectation(204), 204, b"anything", True),
        (Expectation(204), 200, b"", False),
    ],
)
def test_expectation_matches(
    expectation: Expectation, status: int, body: bytes, matches: bool
) -> None:
    assert expectation.matches(status, body) is matches
