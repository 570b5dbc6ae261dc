"""Checking whether this host is online, behind a captive portal, or neither.

The check works the way NetworkManager and Chrome do: fetch a probe URL
whose response is known in advance, over plain HTTP and without following
redirects, and compare. When an RFC 8908 API URI is known, the API is asked
first, because it states the network's view directly.

States:

- online: the probe got its expected response;
- captive: the API returns "captive": true, or the probe's response gives a
  portal away (see capport.client.detect);
- limited: something responds, but not the probe's expected response and no
  portal: the probe host resolves and then its connection fails, or the
  probe gets an unexpected response;
- offline: the probe host does not resolve, or no route leads to it.
"""

from __future__ import annotations

import enum
import errno
import http.client
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from capport import __version__
from capport.client.api import ApiState, fetch_api_state
from capport.client.detect import classify
from capport.client.errors import CaptiveApiError
from capport.client.portal import DetectionKind, Expectation, Portal
from capport.client.responses import MAX_BODY_BYTES, ResponseParts

log = logging.getLogger("capport.client")

# NetworkManager's connectivity check as GNOME configures it
# (NetworkManager.conf(5), [connectivity] uri and response).
DEFAULT_PROBE_URL = "http://nmcheck.gnome.org/check_network_status.txt"
DEFAULT_EXPECTATION = Expectation(200, b"NetworkManager is online")
DEFAULT_TIMEOUT = 5.0

# Errors that mean no path to the probe exists at all, as opposed to a
# path on which the probe is refused or dropped.
_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.ENETDOWN})

Resolver = Callable[..., list[Any]]


class State(enum.Enum):
    """The state of the network that a connectivity check reports."""

    ONLINE = "online"
    CAPTIVE = "captive"
    LIMITED = "limited"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Probe:
    """A URL whose response on an open network is known in advance."""

    url: str = DEFAULT_PROBE_URL
    expected: Expectation = DEFAULT_EXPECTATION
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a connectivity check, with the evidence for it.

    detail is one sentence for people. portal is set when captive.
    http_status is the probe's status, if it got a response. api is the
    RFC 8908 state when the API responded.
    """

    state: State
    detail: str
    probe_url: str
    portal: Portal | None = None
    http_status: int | None = None
    api_uri: str | None = None
    api: ApiState | None = None

    @property
    def portal_url(self) -> str | None:
        return self.portal.url if self.portal else None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "detail": self.detail,
            "portal_url": self.portal_url,
            "detected_by": self.portal.kind.value if self.portal else None,
            "probe_url": self.probe_url,
            "http_status": self.http_status,
            "api_uri": self.api_uri,
            "api": self.api.to_json() if self.api else None,
        }


def check_connectivity(
    probe: Probe = Probe(),
    *,
    api_uri: str | None = None,
    ca_file: Path | str | None = None,
    resolve: Resolver = socket.getaddrinfo,
) -> CheckResult:
    """Check the network: ask the API if api_uri is given, then fetch the probe.

    ca_file verifies the API's certificate instead of the system's trust
    store. resolve is the name lookup, socket.getaddrinfo by default.
    """
    api: ApiState | None = None
    api_note = ""
    if api_uri:
        try:
            api = fetch_api_state(api_uri, ca_file=ca_file, timeout=probe.timeout)
        except CaptiveApiError as error:
            api_note = f" The API gave no state: {error}."
            log.info("Connectivity check without the API: %s", error)
    if api is not None and api.captive:
        portal = Portal(DetectionKind.API, 200, api.user_portal_url, api_uri, api_uri)
        detail = f"The Captive Portal API at {api_uri} reports this device captive."
        return CheckResult(
            State.CAPTIVE, detail, probe.url, portal, api_uri=api_uri, api=api
        )
    result = probe_network(probe, resolve)
    if api_uri:
        result = _with_api(result, api_uri, api, api_note)
    return result


def _with_api(
    result: CheckResult, api_uri: str, api: ApiState | None, note: str
) -> CheckResult:
    portal = result.portal
    if portal is not None and portal.api_uri is None:
        portal = Portal(
            portal.kind, portal.status, portal.url, api_uri, portal.request_url
        )
    return CheckResult(
        result.state,
        result.detail + note,
        result.probe_url,
        portal,
        result.http_status,
        api_uri,
        api,
    )


def probe_network(probe: Probe, resolve: Resolver = socket.getaddrinfo) -> CheckResult:
    """Fetch the probe URL once and classify the network by its response."""
    url = probe.url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)

    # Step 1: name resolution. Failing here means no usable network.
    try:
        resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        return CheckResult(State.OFFLINE, f"Cannot resolve {host}: {error}.", url)

    # Step 2: the request.
    try:
        status, headers, body = _fetch(probe)
    except OSError as error:
        return _failed(probe, error)
    except http.client.HTTPException as error:
        detail = f"The probe {url} got an invalid HTTP response: {error!r}."
        return CheckResult(State.LIMITED, detail, url)

    # Step 3: the response.
    return classify_response(probe, status, headers, body)


def classify_response(
    probe: Probe,
    status: int,
    headers: http.client.HTTPMessage | dict[str, str],
    body: bytes,
) -> CheckResult:
    """Classify the probe's response: expected, a portal, or something else."""
    url = probe.url
    if probe.expected.matches(status, body):
        detail = f"The probe {url} got its expected response ({status})."
        return CheckResult(State.ONLINE, detail, url, http_status=status)
    parts = ResponseParts(
        status=status,
        request_url=url,
        location=headers.get("Location"),
        link=headers.get("Link"),
        body=body,
    )
    portal = classify(parts, probe.expected)
    if portal is not None:
        return CheckResult(
            State.CAPTIVE, portal.describe() + ".", url, portal, http_status=status
        )
    detail = (
        f"The probe {url} got {status} where {probe.expected.status} was expected, "
        "and no captive portal was recognised."
    )
    return CheckResult(State.LIMITED, detail, url, http_status=status)


def _fetch(probe: Probe) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(probe.url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "",
            parts.port,
            timeout=probe.timeout,
            context=ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname or "", parts.port, timeout=probe.timeout
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "User-Agent": f"capport-check/{__version__}",
        "Cache-Control": "no-cache",
        "Connection": "close",
    }
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        body = response.read(MAX_BODY_BYTES)
        return response.status, response.headers, body
    finally:
        connection.close()


def _failed(probe: Probe, error: OSError) -> CheckResult:
    url = probe.url
    if error.errno in _NO_ROUTE:
        return CheckResult(State.OFFLINE, f"No route to the probe {url}: {error}.", url)
    if isinstance(error, TimeoutError):
        reason = f"timed out after {probe.timeout:g} s"
    elif isinstance(error, ssl.SSLError):
        # A portal that intercepts HTTPS presents a certificate for itself.
        reason = f"failed TLS verification ({error})"
    else:
        reason = f"failed: {error}"
    detail = f"The probe host resolves, but the request to {url} {reason}."
    return CheckResult(State.LIMITED, detail, url)
