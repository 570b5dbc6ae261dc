"""The responder's request model, action classification and response bytes."""

from __future__ import annotations

import html
import re
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import parse_qs, urlsplit

import pytest

from capport.intercept.actions import Action, classify
from capport.intercept.request import (
    InterceptedRequest,
    format_authority,
    parse_request,
)
from capport.intercept.responses import (
    ERROR_STATUSES,
    MAX_SHOWN_URL_CHARS,
    ResponseBuilder,
    render_captive_page,
)
from capport.tokens import TokenSigner

PORTAL = "http://192.0.2.1/"
CLIENT = IPv4Address("192.0.2.50")
NOW = 1_780_000_000.25

SIGNER = TokenSigner(b"unit-test-secret-unit-test-secret", lifetime=900)


def make_request(
    target: bytes = b"/news/today?lang=en",
    host: bytes | None = b"example.com",
    method: bytes = b"GET",
    keep_alive: bool = True,
    destination: str = "198.51.100.7",
    http10: bool = False,
) -> InterceptedRequest:
    return parse_request(
        method,
        target,
        host,
        CLIENT,
        keep_alive,
        destination=lambda: destination,
        http10=http10,
    )


def make_builder(clock: float = NOW) -> ResponseBuilder:
    return ResponseBuilder(PORTAL, SIGNER, clock=lambda: clock)


class Response:
    """A response split into status, headers and body for assertions."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("ascii").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ")[1])
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.lower(), []).append(value.strip())
        self.text = self.body.decode("utf-8")

    def header(self, name: str) -> str:
        values = self.headers[name.lower()]
        assert len(values) == 1, f"{name} appears {len(values)} times"
        return values[0]


def captive(request: InterceptedRequest | None = None) -> Response:
    return Response(make_builder().captive(request or make_request()))


def refresh_link(page: str) -> str:
    match = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]*)">', page)
    assert match is not None, "no meta refresh in the page"
    return html.unescape(match.group(1))


def anchor_link(page: str) -> str:
    match = re.search(r'<a href="([^"]*)">', page)
    assert match is not None, "no link in the page"
    return html.unescape(match.group(1))


def token_of(link: str) -> str:
    tokens = parse_qs(urlsplit(link).query)["t"]
    assert len(tokens) == 1
    return tokens[0]


# The 511 response


def test_captive_status_line() -> None:
    response = captive()
    assert response.status_line == "HTTP/1.1 511 Network Authentication Required"


def test_captive_content_type_is_utf8_html() -> None:
    assert captive().header("Content-Type") == "text/html; charset=utf-8"


def test_captive_is_not_cacheable() -> None:
    assert captive().header("Cache-Control") == "no-store"


def test_captive_content_length_matches_body() -> None:
    response = captive()
    assert int(response.header("Content-Length")) == len(response.body)


def test_captive_date_is_clock_time() -> None:
    date = parsedate_to_datetime(captive().header("Date"))
    assert date.timestamp() == int(NOW)
    assert captive().header("Date").endswith(" GMT")


def test_captive_to_http11_keeps_alive_without_header() -> None:
    response = captive(make_request(keep_alive=True))
    assert "connection" not in response.headers
    assert response.body.startswith(b"<!DOCTYPE html>")


def test_captive_to_http10_confirms_keep_alive() -> None:
    response = captive(make_request(keep_alive=True, http10=True))
    assert response.header("Connection") == "keep-alive"


def test_captive_closes_when_client_does_not_keep_alive() -> None:
    assert captive(make_request(keep_alive=False)).header("Connection") == "close"


def test_captive_sets_no_cookie_and_no_challenge() -> None:
    response = captive()
    assert "set-cookie" not in response.headers
    assert "www-authenticate" not in response.headers


def test_captive_page_is_html5_document() -> None:
    page = captive().text
    assert page.startswith("<!DOCTYPE html>\n")
    assert '<html lang="en">' in page
    assert '<meta charset="utf-8">' in page
    assert "<title>Network login required</title>" in page
    assert '<meta name="viewport" content="width=device-width' in page
    assert page.rstrip().endswith("</html>")


def test_meta_refresh_token_verifies_to_captured_url() -> None:
    link = refresh_link(captive().text)
    assert link.startswith(PORTAL + "?t=")
    assert SIGNER.verify(token_of(link)) == "http://example.com/news/today?lang=en"


def test_link_token_verifies_to_captured_url() -> None:
    link = anchor_link(captive().text)
    assert link.startswith(PORTAL + "?t=")
    assert SIGNER.verify(token_of(link)) == "http://example.com/news/today?lang=en"


def test_page_shows_requested_url() -> None:
    page = captive().text
    assert "<code>http://example.com/news/today?lang=en</code>" in page


def test_head_gets_headers_without_body() -> None:
    get = captive(make_request(method=b"GET"))
    head = captive(make_request(method=b"HEAD"))
    assert head.status == 511
    assert head.body == b""
    assert head.header("Content-Length") == get.header("Content-Length")


# Escaping


@pytest.mark.parametrize(
    "markup", [b'"><script>alert(1)</script>', b"<svg onload=alert(1)>"]
)
def test_markup_in_host_is_escaped(markup: bytes) -> None:
    page = captive(make_request(host=markup)).text
    assert "<script" not in page
    assert "<svg" not in page
    assert html.escape(markup.decode(), quote=True) in page


@pytest.mark.parametrize(
    "markup", [b'"><script>alert(1)</script>', b"<svg onload=alert(1)>"]
)
def test_markup_in_path_is_not_echoed(markup: bytes) -> None:
    page = captive(make_request(target=b"/" + markup)).text
    assert "<script" not in page
    assert "<svg" not in page
    assert '"><' not in page


def test_markup_in_path_is_percent_encoded_in_token() -> None:
    request = make_request(target=b'/"><script>')
    link = anchor_link(captive(request).text)
    assert SIGNER.verify(token_of(link)) == "http://example.com/%22%3E%3Cscript%3E"


def test_quote_and_ampersand_in_query_are_escaped() -> None:
    page = captive(make_request(target=b"/?a=1&b='x'")).text
    assert "<code>http://example.com/?a=1&amp;b=&#x27;x&#x27;</code>" in page


def test_page_escapes_url_in_text_and_attributes() -> None:
    page = render_captive_page('http://p/?t="><b>', 'http://h/"><i onload=x>')
    assert "<b>" not in page
    assert "<i " not in page
    assert 'url=http://p/?t=&quot;&gt;&lt;b&gt;"' in page
    assert 'href="http://p/?t=&quot;&gt;&lt;b&gt;"' in page
    assert "http://h/&quot;&gt;&lt;i onload=x&gt;" in page


def test_unsafe_host_gets_bare_portal_link() -> None:
    page = captive(make_request(host=b'"><script>')).text
    assert refresh_link(page) == PORTAL
    assert anchor_link(page) == PORTAL


def test_long_url_is_shortened_on_page_only() -> None:
    target = b"/" + b"a" * (MAX_SHOWN_URL_CHARS * 2)
    page = captive(make_request(target=target)).text
    captured = "http://example.com" + target.decode()
    assert captured not in page
    assert captured[:MAX_SHOWN_URL_CHARS] + "\u2026" in page
    assert SIGNER.verify(token_of(anchor_link(page))) == captured


# The captured URL


def test_absolute_form_target_is_used_as_is() -> None:
    request = make_request(target=b"http://a.example/b?c=d", host=b"other.example")
    assert request.captured_url == "http://a.example/b?c=d"


def test_ipv6_host_is_kept_intact() -> None:
    request = make_request(target=b"/x", host=b"[2001:db8::1]")
    assert request.captured_url == "http://[2001:db8::1]/x"


def test_ipv6_host_token_verifies() -> None:
    request = make_request(target=b"/x", host=b"[2001:db8::1]:8080")
    link = anchor_link(captive(request).text)
    assert SIGNER.verify(token_of(link)) == "http://[2001:db8::1]:8080/x"


def test_missing_host_uses_destination() -> None:
    request = make_request(target=b"/x", host=None, destination="198.51.100.7")
    assert request.captured_url == "http://198.51.100.7/x"


def test_empty_host_uses_destination() -> None:
    request = make_request(target=b"/x", host=b"", destination="198.51.100.7")
    assert request.captured_url == "http://198.51.100.7/x"


def test_host_header_skips_destination_lookup() -> None:
    def fail() -> str:
        raise AssertionError("destination looked up despite a Host header")

    request = parse_request(b"GET", b"/", b"example.com", CLIENT, True, fail)
    assert request.captured_url == "http://example.com/"


def test_asterisk_target_captures_site_root() -> None:
    request = make_request(method=b"OPTIONS", target=b"*")
    assert request.captured_url == "http://example.com/"


def test_non_ascii_target_is_percent_encoded() -> None:
    request = make_request(target="/caf\u00e9 x".encode())
    assert request.captured_url == "http://example.com/caf%C3%A9%20x"


def test_existing_percent_escapes_are_kept() -> None:
    request = make_request(target=b"/a%20b")
    assert request.captured_url == "http://example.com/a%20b"


@pytest.mark.parametrize(
    ("ip", "port", "authority"),
    [
        ("198.51.100.7", 80, "198.51.100.7"),
        ("198.51.100.7", 8080, "198.51.100.7:8080"),
        ("2001:db8::1", 80, "[2001:db8::1]"),
        ("2001:db8::1", 8080, "[2001:db8::1]:8080"),
    ],
)
def test_format_authority(ip: str, port: int, authority: str) -> None:
    assert format_authority(ip_address(ip), port) == authority


def test_ipv6_destination_is_bracketed() -> None:
    destination = format_authority(IPv6Address("2001:db8::1"), 80)
    request = make_request(target=b"/x", host=None, destination=destination)
    assert request.captured_url == "http://[2001:db8::1]/x"


# Classification and the 307 after login


def test_unauthorised_client_gets_captive() -> None:
    assert classify(make_request(), authorised=False) is Action.CAPTIVE


def test_authorised_client_gets_return() -> None:
    assert classify(make_request(), authorised=True) is Action.RETURN


def test_authorised_client_with_unsafe_host_gets_captive() -> None:
    request = make_request(host=b"<svg onload=alert(1)>")
    assert classify(request, authorised=True) is Action.CAPTIVE


def test_only_return_closes_connection() -> None:
    assert Action.RETURN.closes_connection
    assert not Action.CAPTIVE.closes_connection


def test_return_redirects_to_captured_url() -> None:
    request = make_request()
    response = Response(make_builder().build(request, Action.RETURN))
    assert response.status_line == "HTTP/1.1 307 Temporary Redirect"
    assert response.header("Location") == "http://example.com/news/today?lang=en"


def test_return_closes_and_is_not_cacheable() -> None:
    response = Response(make_builder().build(make_request(), Action.RETURN))
    assert response.header("Connection") == "close"
    assert response.header("Cache-Control") == "no-store"
    assert int(response.header("Content-Length")) == len(response.body)


def test_return_to_head_has_no_body() -> None:
    request = make_request(method=b"HEAD")
    response = Response(make_builder().build(request, Action.RETURN))
    assert response.status == 307
    assert response.body == b""


def test_build_captive_action_gives_511() -> None:
    response = Response(make_builder().build(make_request(), Action.CAPTIVE))
    assert response.status == 511


# Error responses


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_response_closes_connection(status: int) -> None:
    response = Response(make_builder().error(status))
    assert response.status == status
    assert response.header("Connection") == "close"
    assert int(response.header("Content-Length")) == len(response.body)


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_error_body_is_short_and_generic(status: int) -> None:
    response = Response(make_builder().error(status))
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.text.startswith(f"{status} ")
    assert len(response.body) < 64


def test_error_to_head_has_no_body() -> None:
    response = Response(make_builder().error(400, head_only=True))
    assert response.status == 400
    assert response.body == b""
    assert int(response.header("Content-Length")) > 0


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "Bad Request"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (431, "Request Header Fields Too Large"),
        (503, "Service Unavailable"),
    ],
)
def test_error_reason_phrase(status: int, reason: str) -> None:
    response = Response(make_builder().error(status))
    assert response.status_line == f"HTTP/1.1 {status} {reason}"


# Caching


def test_date_follows_clock_between_seconds() -> None:
    now = [NOW]
    builder = ResponseBuilder(PORTAL, SIGNER, clock=lambda: now[0])
    first = Response(builder.captive(make_request())).header("Date")
    now[0] += 1
    second = Response(builder.captive(make_request())).header("Date")
    assert parsedate_to_datetime(second).timestamp() == int(NOW) + 1
    assert first != second


def test_repeated_request_gets_same_page_within_second() -> None:
    builder = make_builder()
    first = builder.captive(make_request())
    assert builder.captive(make_request()) == first


def test_page_cache_keeps_max_entries() -> None:
    builder = ResponseBuilder(PORTAL, SIGNER, clock=lambda: NOW, cache_size=2)
    for index in range(5):
        builder.captive(make_request(target=f"/{index}".encode()))
    assert len(builder._pages) == 2


def test_portal_url_with_query_gets_ampersand() -> None:
    builder = ResponseBuilder("http://192.0.2.1/login?site=3", SIGNER)
    link = builder.portal_link("http://example.com/")
    assert link.startswith("http://192.0.2.1/login?site=3&t=")
