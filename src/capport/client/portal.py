"""Detection results, and the responses that probes expect.

Plain values with no I/O, shared by detection, the connectivity check and
the integrations.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DetectionKind(enum.Enum):
    """The evidence that a response came from a captive portal."""

    # 511 Network Authentication Required (RFC 6585 section 6). Only an
    # intercepting proxy sends it, so it needs no other evidence.
    STATUS_511 = "status-511"
    # A 302, 303 or 307 that sent a plain-HTTP request of a probe to
    # another host.
    REDIRECT = "redirect"
    # A 200 with a meta refresh where a probe expected other content.
    LOGIN_PAGE = "login-page"
    # A WISPr <WISPAccessGatewayParam> block with a LoginURL in the body.
    WISPR = "wispr"
    # The RFC 8908 Captive Portal API returned "captive": true.
    API = "api"


@dataclass(frozen=True)
class Portal:
    """A captive portal found in a response.

    url is the login page, absolute, or None when the response named none.
    api_uri is the RFC 8908 API URI when the response or a DHCP lease gave
    one. status is the HTTP status of the response that gave it away, and
    request_url the URL that was requested.
    """

    kind: DetectionKind
    status: int
    url: str | None = None
    api_uri: str | None = None
    request_url: str | None = None

    def describe(self) -> str:
        """Return one sentence for a person: where to log in."""
        if self.url:
            return f"This network requires a login at {self.url}"
        return (
            f"This network requires a login (HTTP {self.status}), "
            "but its response named no login page"
        )


@dataclass(frozen=True)
class Expectation:
    """The response a connectivity probe receives when the network is open.

    status is the expected HTTP status. body, when not None, is the text the
    response body must start with, the rule NetworkManager applies to its
    `response` setting (NetworkManager.conf(5)). An empty body means the
    probe expects no content: status 204, or an empty body with the status.
    """

    status: int = 200
    body: bytes | None = None

    def matches(self, status: int, body: bytes | None) -> bool:
        """Tell whether a response with status and body is the expected one."""
        if self.body is None:
            return status == self.status
        if self.body == b"":
            return status == 204 or (status == self.status and not body)
        return status == self.status and (body or b"").startswith(self.body)
