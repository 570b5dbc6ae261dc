"""Reading portal pages: meta refresh, links, WISPr XML and Link headers."""

from __future__ import annotations

import pytest

from capport.client.pages import (
    absolute_url,
    find_link,
    find_wispr_login_url,
    parse_page,
    parse_refresh,
)

WISPR_IN_COMMENT = """<html><body>Hotspot
<!--
<?xml version="1.0" encoding="UTF-8"?>
<WISPAccessGatewayParam xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<Redirect>
<AccessProcedure>1.0</AccessProcedure>
<AccessLocation>cafe</AccessLocation>
<LoginURL>https://login.hotspot.test/login?res=notyet&amp;uamip=10.1.0.1</LoginURL>
<MessageType>100</MessageType>
<ResponseCode>0</ResponseCode>
</Redirect>
</WISPAccessGatewayParam>
-->
</body></html>"""


@pytest.mark.parametrize(
    "content, expected",
    [
        ("0; url=http://p/login", "http://p/login"),
        ("0;URL='http://p/'", "http://p/"),
        ('5, url="http://p/a"', "http://p/a"),
        ("0; http://p/bare", "http://p/bare"),
        ("  3 ;  url = /relative ", "/relative"),
        ("0", None),
        ("0;", None),
        ("", None),
    ],
)
def test_refresh_content_forms(content: str, expected: str | None) -> None:
    assert parse_refresh(content) == expected


def test_page_refresh_and_links() -> None:
    page = (
        '<META HTTP-EQUIV="Refresh" CONTENT="0; url=http://p/?a=1&amp;b=2">'
        '<a href="/one">one</a><a name="x">no href</a><a href=" /two ">two</a>'
    )
    refresh, links = parse_page(page)
    assert refresh == "http://p/?a=1&b=2"
    assert links == ["/one", "/two"]


def test_page_keeps_first_refresh() -> None:
    page = (
        '<meta http-equiv="refresh" content="0; url=/first">'
        '<meta http-equiv="refresh" content="0; url=/second">'
    )
    assert parse_page(page)[0] == "/first"


def test_wispr_login_url_in_comment() -> None:
    assert (
        find_wispr_login_url(WISPR_IN_COMMENT)
        == "https://login.hotspot.test/login?res=notyet&uamip=10.1.0.1"
    )


def test_wispr_login_url_in_cdata() -> None:
    text = (
        "<WISPAccessGatewayParam><Redirect>"
        "<LoginURL><![CDATA[https://l.test/?a=1&b=2]]></LoginURL>"
        "</Redirect></WISPAccessGatewayParam>"
    )
    assert find_wispr_login_url(text) == "https://l.test/?a=1&b=2"


def test_wispr_without_login_url() -> None:
    text = "<WISPAccessGatewayParam><Proxy></Proxy></WISPAccessGatewayParam>"
    assert find_wispr_login_url(text) is None


def test_login_url_outside_wispr_block_ignored() -> None:
    assert find_wispr_login_url("<LoginURL>https://l.test/</LoginURL>") is None


@pytest.mark.parametrize(
    "header, expected",
    [
        (
            '<https://api.test/capport>; rel="captive-portal"',
            "https://api.test/capport",
        ),
        (
            '<https://a.test/>; rel=next, <https://api.test/c>; rel="captive-portal"',
            "https://api.test/c",
        ),
        (
            '<https://api.test/c,x>; type="json"; rel="other Captive-Portal"',
            "https://api.test/c,x",
        ),
        ("<https://a.test/>; rel=next", None),
        ("garbage", None),
    ],
)
def test_link_header_relation(header: str, expected: str | None) -> None:
    assert find_link(header, "captive-portal") == expected


@pytest.mark.parametrize(
    "base, target, expected",
    [
        ("http://origin.test/a/b", "/login", "http://origin.test/login"),
        ("http://origin.test/", "https://p.test/x", "https://p.test/x"),
        ("http://origin.test/", "javascript:alert(1)", None),
        ("http://origin.test/", "data:text/html,hi", None),
        (None, "/relative", None),
        ("http://origin.test/", "http://[::1", None),
    ],
)
def test_absolute_url_only_http(
    base: str | None, target: str, expected: str | None
) -> None:
    assert absolute_url(base, target) == expected
