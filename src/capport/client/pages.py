"""Reading portal pages: meta refresh, links, WISPr XML and Link headers.

Pure functions on text already received, with no I/O. Callers
cap the text they pass in, so the parsers need no limits of their own.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# The block a WISPr 1.0 gateway puts in its pages, often inside an HTML
# comment so that browsers do not show it.
_WISPR_BLOCK = re.compile(
    r"<WISPAccessGatewayParam\b.*?</WISPAccessGatewayParam\s*>",
    re.IGNORECASE | re.DOTALL,
)
_WISPR_LOGIN_URL = re.compile(
    r"<LoginURL\s*>(.*?)</LoginURL\s*>", re.IGNORECASE | re.DOTALL
)
_CDATA = re.compile(r"^<!\[CDATA\[(.*)\]\]>$", re.DOTALL)

# One link-value of an RFC 8288 Link header: <target> then parameters. The
# target cannot contain ">", so commas inside it do not split values.
_LINK_VALUE = re.compile(r"<([^>]*)>((?:\s*;\s*[^,;]+)*)")
_LINK_PARAM = re.compile(
    r";\s*([A-Za-z0-9!#$&+\-.^_`|~*]+)\s*=\s*(\"[^\"]*\"|[^;,\s]*)"
)


class _PortalPageParser(HTMLParser):
    """Collects the first meta refresh target and every <a href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refresh: str | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            if self.refresh is None:
                self.refresh = parse_refresh(values.get("content", ""))
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"].strip())


def parse_refresh(content: str) -> str | None:
    """Return the URL of a meta refresh content value such as `0; url=/login`.

    Follows the HTML standard's shared declarative refresh steps: a delay,
    a ";" or ",", then the URL with or without a leading `url=`, and with
    or without quotes. A value with no URL (a plain reload) gives None.
    """
    match = re.match(r"\s*[0-9.]*\s*[;,]\s*(.*)$", content, re.DOTALL)
    if match is None:
        return None
    rest = match.group(1).strip()
    url_prefix = re.match(r"url\s*=\s*", rest, re.IGNORECASE)
    if url_prefix is not None:
        rest = rest[url_prefix.end() :]
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        rest = rest[1:].split(quote, 1)[0]
    return rest.strip() or None


def parse_page(text: str) -> tuple[str | None, list[str]]:
    """Return the meta refresh target and the link targets of an HTML page.

    Targets are returned as written, with character references decoded.
    """
    parser = _PortalPageParser()
    parser.feed(text)
    parser.close()
    return parser.refresh, parser.links


def find_wispr_login_url(text: str) -> str | None:
    """Return the LoginURL of a WISPr gateway block in text, if there is one."""
    block = _WISPR_BLOCK.search(text)
    if block is None:
        return None
    login = _WISPR_LOGIN_URL.search(block.group(0))
    if login is None:
        return None
    value = login.group(1).strip()
    cdata = _CDATA.match(value)
    if cdata is not None:
        return cdata.group(1).strip() or None
    # Outside CDATA, XML escapes "&" as "&amp;", and html.unescape decodes the
    # five XML entities and numeric references alike.
    return html.unescape(value) or None


def find_link(header: str, relation: str) -> str | None:
    """Return the target of the first link in a Link header with rel=relation.

    A rel parameter may hold several space-separated relation types
    (RFC 8288 section 3.3), compared case-insensitively.
    """
    target_relation = relation.lower()
    for match in _LINK_VALUE.finditer(header):
        for name, value in _LINK_PARAM.findall(match.group(2)):
            if name.lower() != "rel":
                continue
            relations = value.strip('"').lower().split()
            if target_relation in relations:
                return match.group(1).strip()
    return None


def absolute_url(base: str | None, target: str) -> str | None:
    """Resolve target against base, and return it only if it is an http(s) URL.

    Anything else (`javascript:`, `data:`, a relative target with no base)
    is no place to send a person to log in, so it gives None.
    """
    try:
        resolved = urljoin(base, target) if base else target
        parts = urlsplit(resolved)
        host = parts.hostname
    except ValueError:
        # urlsplit raises on an unbalanced "[" in the host.
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return resolved


def host_of(url: str | None) -> str | None:
    """Return the lower-case host name of url, or None if it has none."""
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
