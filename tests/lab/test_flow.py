"""The login flow's page parsing and checks, and curl output parsing (no I/O)."""

from __future__ import annotations

import pytest

from capport.lab.demo import parse_curl_output
from capport.lab.flow import (
    STEP_COUNT,
    Response,
    check_captive_response,
    check_online,
    check_redirect,
    check_splash_page,
    flow_succeeded,
    parse_page,
    run_login_flow,
)

ORIGIN = "http://origin.lab/"
PORTAL = "http://192.0.2.1/?t=abc&amp;x=1"
PORTAL_HOSTS = {"192.0.2.1", "portal.lab"}

CAPTIVE_BODY = f"""<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0; url={PORTAL}">
</head><body><a href="{PORTAL}">Log in</a></body></html>"""

SPLASH_BODY = """<form method="post" action="/accept">
<input type="hidden" name="csrf" value="c1">
<input type="hidden" name="t" value="abc">
<input type="text" name="note" value="typed">
<button type="submit">Accept</button>
</form>"""


def captive(status: int = 511, cache_control: str = "no-store") -> Response:
    return Response(status, [("Cache-Control", cache_control)], CAPTIVE_BODY)


# Parsing pages


def test_refresh_url_is_unescaped_and_absolute() -> None:
    refresh, _, _ = parse_page(CAPTIVE_BODY, ORIGIN)
    assert refresh == "http://192.0.2.1/?t=abc&x=1"


@pytest.mark.parametrize(
    "content, expected",
    [
        ("0; url=/portal", "http://origin.lab/portal"),
        ("5;URL='http://p/'", "http://p/"),
        ("0; url=&quot;http://p/a&quot;", "http://p/a"),
        ("0; url=http://p/?a=1&amp;b=2", "http://p/?a=1&b=2"),
        ("0", None),
        ("0; next=http://p/", None),
    ],
)
def test_refresh_content_forms(content: str, expected: str | None) -> None:
    body = f'<meta http-equiv="Refresh" content="{content}">'
    refresh, _, _ = parse_page(body, ORIGIN)
    assert refresh == expected


def test_form_keeps_hidden_fields_only() -> None:
    _, _, forms = parse_page(SPLASH_BODY, "http://192.0.2.1/")
    assert forms[0].fields == {"csrf": "c1", "t": "abc"}


def test_form_action_is_absolute() -> None:
    _, _, forms = parse_page(SPLASH_BODY, "http://192.0.2.1/?t=abc")
    assert forms[0].action == "http://192.0.2.1/accept"
    assert forms[0].method == "post"


def test_form_sends_named_submit_button() -> None:
    body = '<form method="post"><button name="go" value="yes">Go</button></form>'
    _, _, forms = parse_page(body, "http://p/")
    assert forms[0].fields == {"go": "yes"}


# Checks


def test_captive_response_returns_portal_url() -> None:
    ok, _, url = check_captive_response(captive(), ORIGIN, PORTAL_HOSTS)
    assert ok
    assert url == "http://192.0.2.1/?t=abc&x=1"


def test_captive_response_rejects_redirect() -> None:
    ok, detail, _ = check_captive_response(captive(status=302), ORIGIN, PORTAL_HOSTS)
    assert not ok
    assert "expected 511, got 302" in detail


def test_captive_response_requires_no_store() -> None:
    response = captive(cache_control="max-age=60")
    ok, detail, _ = check_captive_response(response, ORIGIN, PORTAL_HOSTS)
    assert not ok
    assert "no-store" in detail


def test_captive_response_rejects_foreign_portal() -> None:
    ok, detail, _ = check_captive_response(captive(), ORIGIN, {"portal.lab"})
    assert not ok
    assert "not to the portal" in detail


def test_captive_response_requires_link() -> None:
    body = f'<meta http-equiv="refresh" content="0; url={PORTAL}">'
    response = Response(511, [("cache-control", "no-store")], body)
    ok, detail, _ = check_captive_response(response, ORIGIN, PORTAL_HOSTS)
    assert not ok
    assert "no link" in detail


def test_splash_page_without_form_fails() -> None:
    ok, detail, _ = check_splash_page(Response(200, [], "<p>hi</p>"), "http://p/")
    assert not ok
    assert "no POST form" in detail


def test_redirect_to_other_url_fails() -> None:
    response = Response(303, [("Location", "http://evil.example/")], "")
    ok, detail, _ = check_redirect(response, "http://192.0.2.1/accept", ORIGIN)
    assert not ok
    assert "expected http://origin.lab/" in detail


def test_redirect_relative_location_resolves() -> None:
    response = Response(303, [("Location", "/status")], "")
    ok, _, target = check_redirect(
        response, "http://192.0.2.1/accept", "http://192.0.2.1/status"
    )
    assert ok
    assert target == "http://192.0.2.1/status"


def test_online_requires_marker() -> None:
    ok, _, _ = check_online(Response(200, [], "other page"), "MARK")
    assert not ok


# The whole flow, against recorded responses


class RecordedPortal:
    """Returns what a working gateway sends for each of the flow's requests."""

    def __init__(self, accept_status: int = 303) -> None:
        self.accept_status = accept_status
        self.requests: list[tuple[str, str, dict[str, str] | None]] = []
        self.online = False

    def __call__(
        self, method: str, url: str, form: dict[str, str] | None = None
    ) -> Response:
        self.requests.append((method, url, form))
        if url == ORIGIN:
            return Response(200, [], "MARK") if self.online else captive()
        if method == "GET":
            return Response(200, [], SPLASH_BODY)
        self.online = self.accept_status == 303
        return Response(self.accept_status, [("Location", ORIGIN)], "")


def test_flow_passes_every_step() -> None:
    results = run_login_flow(RecordedPortal(), ORIGIN, "MARK", PORTAL_HOSTS)
    assert [step.ok for step in results] == [True] * STEP_COUNT
    assert flow_succeeded(results)


def test_flow_posts_hidden_fields() -> None:
    portal = RecordedPortal()
    run_login_flow(portal, ORIGIN, "MARK", PORTAL_HOSTS)
    method, url, form = portal.requests[2]
    assert (method, url) == ("POST", "http://192.0.2.1/accept")
    assert form == {"csrf": "c1", "t": "abc"}


def test_flow_stops_at_first_failure() -> None:
    results = run_login_flow(
        RecordedPortal(accept_status=403), ORIGIN, "MARK", PORTAL_HOSTS
    )
    assert [step.ok for step in results] == [True, True, False]
    assert not flow_succeeded(results)


def test_flow_reports_request_error() -> None:
    def refuse(method: str, url: str, form: dict[str, str] | None = None) -> Response:
        raise ConnectionRefusedError("connection refused")

    results = run_login_flow(refuse, ORIGIN, "MARK", PORTAL_HOSTS)
    assert len(results) == 1
    assert "request failed: connection refused" in results[0].detail


def test_step_result_survives_json() -> None:
    results = run_login_flow(RecordedPortal(), ORIGIN, "MARK", PORTAL_HOSTS)
    step = results[0]
    assert type(step).from_json(step.to_json()) == step


# curl --include output


def test_curl_output_parsed() -> None:
    text = (
        "HTTP/1.1 511 Network Authentication Required\r\n"
        "Cache-Control: no-store\r\n\r\nbody\r\n"
    )
    response = parse_curl_output(text)
    assert response.status == 511
    assert response.header("cache-control") == "no-store"
    assert response.body == "body\r\n"


def test_curl_output_skips_interim_response() -> None:
    text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 303 See Other\r\nLocation: /x\r\n\r\n"
    response = parse_curl_output(text)
    assert response.status == 303
    assert response.header("location") == "/x"


def test_curl_output_without_headers_rejected() -> None:
    with pytest.raises(ValueError, match="no HTTP header block"):
        parse_curl_output("HTTP/1.1 200 OK\n\nbody")
