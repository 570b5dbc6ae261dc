"""The operating-system probe table: which requests are probes, and their responses.

Operating systems and browsers test a new network with a plain-HTTP request
whose response they know. Before login, a probe gets the response that makes
its system open the sign-in window, and every other request keeps getting
511. After login the kernel forwards probes to the real host, unless an
entry sets answer_after_login. Then the gateway sends the expected response
itself (for a host the gateway cannot reach, or whose name the operator's
DNS points at the gateway).

Pure: no I/O. The sources of each default are listed in the README.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BeforeLogin(enum.StrEnum):
    """The response to a probe from a device that has not logged in."""

    # 302 Found to the portal. AOSP NetworkMonitor counts 200-399 (other than
    # 204) as a portal and any other status, 511 included, as no
    # connectivity, so a redirect is the one response every system reads as a
    # portal.
    REDIRECT = "redirect"
    # The ordinary 511 page, for probes of systems that open the sign-in
    # window on any response other than their expected one.
    CAPTIVE = "captive"


class ProbeEntry(BaseModel):
    """One `[[probes]]` entry of the configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    system: str = Field(default="", max_length=64)
    host: str = Field(min_length=1, max_length=253)
    path: str = Field(min_length=1, max_length=1024, pattern=r"^/[\x21-\x7e]*$")
    # A case-sensitive substring of the User-Agent header; unset matches any.
    user_agent: str | None = Field(default=None, min_length=1, max_length=256)
    before_login: BeforeLogin = BeforeLogin.REDIRECT
    answer_after_login: bool = False
    status: Literal[200, 204] = 200
    content_type: str = Field(
        default="text/plain", pattern=r"^[\x21-\x7e][\x20-\x7e]*$"
    )
    body: str = ""
    # false removes a built-in entry with the same host, path and user_agent.
    enabled: bool = True

    @field_validator("host")
    @classmethod
    def _lower_host(cls, value: str) -> str:
        host = value.strip().lower().rstrip(".")
        if not host or any(c in host for c in "/:@ \t[]"):
            raise ValueError(f"invalid host {value!r}: expected a DNS name")
        return host

    @field_validator("before_login", mode="before")
    @classmethod
    def _parse_answer(cls, value: object) -> BeforeLogin:
        try:
            return BeforeLogin(str(value))
        except ValueError:
            raise ValueError('expected "redirect" or "captive"') from None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.host, self.path, self.user_agent)

    @property
    def success_body(self) -> bytes:
        """Return the exact body the real host serves to an online device."""
        return self.body.encode("utf-8")


def _probe(
    system: str,
    host: str,
    path: str,
    *,
    status: Literal[200, 204] = 200,
    content_type: str = "text/plain",
    body: str = "",
    user_agent: str | None = None,
) -> ProbeEntry:
    return ProbeEntry(
        system=system,
        host=host,
        path=path,
        status=status,
        content_type=content_type,
        body=body,
        user_agent=user_agent,
    )


APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
APPLE_LIBRARY_SUCCESS = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2//EN">\n<HTML>\n<HEAD>\n'
    "\t<TITLE>Success</TITLE>\n</HEAD>\n<BODY>\nSuccess\n</BODY>\n</HTML>\n"
)
FIREFOX_CANONICAL = (
    '<meta http-equiv="refresh" '
    'content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)
NETWORKMANAGER_ONLINE = "NetworkManager is online\n"

# Every default answers a redirect before login and is forwarded to the real
# host after it. The README lists each system's rule and its source.
DEFAULT_PROBES: tuple[ProbeEntry, ...] = (
    _probe("android", "connectivitycheck.gstatic.com", "/generate_204", status=204),
    _probe("android", "clients3.google.com", "/generate_204", status=204),
    _probe("android", "www.google.com", "/gen_204", status=204),
    _probe(
        "apple",
        "captive.apple.com",
        "/hotspot-detect.html",
        content_type="text/html",
        body=APPLE_SUCCESS,
        user_agent="CaptiveNetworkSupport",
    ),
    _probe(
        "apple",
        "www.apple.com",
        "/library/test/success.html",
        content_type="text/html",
        body=APPLE_LIBRARY_SUCCESS,
    ),
    _probe(
        "windows",
        "www.msftconnecttest.com",
        "/connecttest.txt",
        body="Microsoft Connect Test",
    ),
    # Windows opens the browser here once connecttest.txt looked wrong. It
    # has no expected body; the real host redirects to a news page.
    _probe("windows", "www.msftconnecttest.com", "/redirect"),
    _probe("windows", "www.msftncsi.com", "/ncsi.txt", body="Microsoft NCSI"),
    _probe(
        "firefox",
        "detectportal.firefox.com",
        "/canonical.html",
        content_type="text/html",
        body=FIREFOX_CANONICAL,
    ),
    _probe("firefox", "detectportal.firefox.com", "/success.txt", body="success\n"),
    _probe("chrome", "www.gstatic.com", "/generate_204", status=204),
    _probe(
        "networkmanager",
        "nmcheck.gnome.org",
        "/check_network_status.txt",
        body=NETWORKMANAGER_ONLINE,
    ),
    _probe(
        "networkmanager", "network-test.debian.org", "/nm", body=NETWORKMANAGER_ONLINE
    ),
    _probe("networkmanager", "fedoraproject.org", "/static/hotspot.txt", body="OK"),
    _probe(
        "networkmanager",
        "ping.archlinux.org",
        "/nm-check.txt",
        body=NETWORKMANAGER_ONLINE,
    ),
)


def merge_probes(configured: Iterable[ProbeEntry]) -> tuple[ProbeEntry, ...]:
    """Return the defaults with configured entries replacing, removing or adding.

    An entry with the host, path and user_agent of a default replaces it, or
    removes it when it sets enabled = false. Configured entries come first,
    so they win over a default that matches the same request.
    """
    configured = list(configured)
    keys = {entry.key for entry in configured}
    remaining_defaults = [e for e in DEFAULT_PROBES if e.key not in keys]
    merged = [*configured, *remaining_defaults]
    return tuple(entry for entry in merged if entry.enabled)


class ProbeTable:
    """Looks probes up by host and path, then by User-Agent."""

    def __init__(self, entries: Iterable[ProbeEntry]) -> None:
        self.entries = tuple(entries)
        self._index: dict[tuple[str, str], list[ProbeEntry]] = {}
        for entry in self.entries:
            self._index.setdefault((entry.host, entry.path), []).append(entry)

    @property
    def hosts(self) -> frozenset[str]:
        """Return every host name the table has a probe for."""
        return frozenset(entry.host for entry in self.entries)

    @property
    def agent_dependent_hosts(self) -> frozenset[bytes]:
        """Return the hosts whose response depends on the User-Agent, as bytes.

        A cache of responses keyed without the User-Agent must skip these.
        """
        return frozenset(
            entry.host.encode("ascii", "replace")
            for entry in self.entries
            if entry.user_agent is not None
        )

    def match(
        self, host: str | None, target: str, user_agent: str | None
    ) -> ProbeEntry | None:
        """Return the entry for a request to host with target, or None.

        host is the Host header (a port is ignored). An absolute-form target
        names the host itself.
        """
        if target.startswith("/"):
            path = target.partition("?")[0]
        else:
            parts = urlsplit(target)
            host, path = parts.netloc, parts.path or "/"
        name = normalise_host(host)
        if name is None:
            return None
        for entry in self._index.get((name, path), []):
            if entry.user_agent is None:
                return entry
            if user_agent is not None and entry.user_agent in user_agent:
                return entry
        return None


def normalise_host(host: str | None) -> str | None:
    """Return host in lower case without its port or a trailing dot."""
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rpartition(":")[0] if ":" in name else name
    return name.rstrip(".") or None
