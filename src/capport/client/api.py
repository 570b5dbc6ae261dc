"""A client of the RFC 8908 Captive Portal API.

The API is a JSON document (media type application/captive+json) served
over HTTPS. RFC 8908 section 4 requires an https URI and a certificate the
client verifies. parse_api_state() checks a document and is pure;
fetch_api_state() does one request. CaptivePortalApi keeps the last valid
state across refreshes, so a bad response mid-session does not erase what the
client knew.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from capport.client.errors import CaptiveApiError
from capport.client.pages import absolute_url

log = logging.getLogger("capport.client")

CAPTIVE_JSON = "application/captive+json"
# An API state has a handful of keys, so a larger response cannot be one.
MAX_API_BODY_BYTES = 4096
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ApiState:
    """The keys of an RFC 8908 section 5 API state that this client reads.

    Optional keys the server left out are None.
    """

    captive: bool
    user_portal_url: str | None = None
    venue_info_url: str | None = None
    can_extend_session: bool | None = None
    seconds_remaining: float | None = None
    bytes_remaining: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the state with RFC 8908's key names, leaving out absent keys."""
        keys = {
            "captive": self.captive,
            "user-portal-url": self.user_portal_url,
            "venue-info-url": self.venue_info_url,
            "can-extend-session": self.can_extend_session,
            "seconds-remaining": self.seconds_remaining,
            "bytes-remaining": self.bytes_remaining,
        }
        return {key: value for key, value in keys.items() if value is not None}


def parse_api_state(body: bytes, content_type: str | None, uri: str) -> ApiState:
    """Check an API response and return its state, or raise CaptiveApiError.

    Unknown keys are ignored, as RFC 8908 section 5 lets servers add keys.
    A known key with a value of the wrong type makes the whole response
    invalid, because a client cannot tell which of its values to trust.
    uri resolves relative URLs and names the API in messages.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != CAPTIVE_JSON:
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} responded with Content-Type "
            f"{content_type!r}; expected {CAPTIVE_JSON}"
        )
    if len(body) > MAX_API_BODY_BYTES:
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} sent more than "
            f"{MAX_API_BODY_BYTES} bytes; an API state is far smaller"
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} sent invalid JSON: {error}"
        ) from None
    if not isinstance(document, dict):
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} sent a JSON "
            f"{type(document).__name__}; expected an object"
        )
    return _state(document, uri)


def _state(document: dict[str, Any], uri: str) -> ApiState:
    captive = document.get("captive")
    if not isinstance(captive, bool):
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} sent no boolean 'captive' key "
            f"(got {captive!r})"
        )
    return ApiState(
        captive=captive,
        user_portal_url=_url(document, "user-portal-url", uri),
        venue_info_url=_url(document, "venue-info-url", uri),
        can_extend_session=_boolean(document, "can-extend-session", uri),
        seconds_remaining=_number(document, "seconds-remaining", uri),
        bytes_remaining=_integer(document, "bytes-remaining", uri),
    )


def _invalid(uri: str, key: str, value: object, expected: str) -> CaptiveApiError:
    return CaptiveApiError(
        f"the Captive Portal API at {uri} sent an invalid {key!r}: {value!r}; "
        f"expected {expected}"
    )


def _url(document: dict[str, Any], key: str, uri: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    url = absolute_url(uri, value) if isinstance(value, str) else None
    if url is None:
        raise _invalid(uri, key, value, "an http or https URL")
    return url


def _boolean(document: dict[str, Any], key: str, uri: str) -> bool | None:
    value = document.get(key)
    if value is not None and not isinstance(value, bool):
        raise _invalid(uri, key, value, "true or false")
    return value


def _number(document: dict[str, Any], key: str, uri: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    # bool is a subclass of int in Python, but true is not a number in JSON.
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value < 0:
        raise _invalid(uri, key, value, "a number of 0 or more")
    return float(value)


def _integer(document: dict[str, Any], key: str, uri: str) -> int | None:
    value = _number(document, key, uri)
    return None if value is None else int(value)


def fetch_api_state(
    uri: str, *, ca_file: Path | str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> ApiState:
    """Fetch the API state at uri and verify its certificate.

    ca_file is a PEM file of trusted certificates, and the system's trust
    store is used without one. Redirects are not followed. Raises
    CaptiveApiError when the request fails or the response is invalid.
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise CaptiveApiError(
            f"invalid Captive Portal API URI {uri!r}: RFC 8908 requires an https URI"
        )
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise CaptiveApiError(
            f"cannot load the CA file {ca_file}: {error}; pass a PEM file"
        ) from None
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port, timeout=timeout, context=context
    )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request(
            "GET", target, headers={"Accept": CAPTIVE_JSON, "Cache-Control": "no-cache"}
        )
        response = connection.getresponse()
        body = response.read(MAX_API_BODY_BYTES + 1)
    except (OSError, http.client.HTTPException) as error:
        raise CaptiveApiError(
            f"cannot fetch the Captive Portal API at {uri}: {error}"
        ) from None
    finally:
        connection.close()
    if response.status != 200:
        raise CaptiveApiError(
            f"the Captive Portal API at {uri} responded with {response.status} "
            f"{response.reason}; expected 200"
        )
    return parse_api_state(body, response.getheader("Content-Type"), uri)


class CaptivePortalApi:
    """The API state of one network, refreshed on request.

    The properties return the last valid state's values, or None before
    the first successful refresh. last_error is the error of the latest
    refresh if it failed.
    """

    def __init__(
        self,
        uri: str,
        *,
        ca_file: Path | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.uri = uri
        self.ca_file = ca_file
        self.timeout = timeout
        self.state: ApiState | None = None
        self.last_error: CaptiveApiError | None = None

    def refresh(self) -> ApiState | None:
        """Fetch and return the state, or return the previous one on failure."""
        try:
            state = fetch_api_state(
                self.uri, ca_file=self.ca_file, timeout=self.timeout
            )
        except CaptiveApiError as error:
            self.last_error = error
            log.warning("Keeping the last Captive Portal API state: %s", error)
            return self.state
        self.state = state
        self.last_error = None
        return state

    @property
    def captive(self) -> bool | None:
        return None if self.state is None else self.state.captive

    @property
    def user_portal_url(self) -> str | None:
        return None if self.state is None else self.state.user_portal_url

    @property
    def venue_info_url(self) -> str | None:
        return None if self.state is None else self.state.venue_info_url

    @property
    def can_extend_session(self) -> bool | None:
        return None if self.state is None else self.state.can_extend_session

    @property
    def seconds_remaining(self) -> float | None:
        return None if self.state is None else self.state.seconds_remaining

    @property
    def bytes_remaining(self) -> int | None:
        return None if self.state is None else self.state.bytes_remaining
