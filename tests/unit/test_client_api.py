"""Checking RFC 8908 Captive Portal API responses."""

from __future__ import annotations

import json

import pytest

from capport.client.api import (
    CAPTIVE_JSON,
    MAX_API_BODY_BYTES,
    ApiState,
    fetch_api_state,
    parse_api_state,
)
from capport.client.errors import CaptiveApiError

URI = "https://api.test/capport"


def parse(document: object, content_type: str = CAPTIVE_JSON) -> ApiState:
    return parse_api_state(json.dumps(document).encode(), content_type, URI)


def test_full_state_parsed() -> None:
    state = parse(
        {
            "captive": False,
            "user-portal-url": "https://portal.test/",
            "venue-info-url": "https://venue.test/",
            "can-extend-session": True,
            "seconds-remaining": 326,
            "bytes-remaining": 65536,
        }
    )
    assert state == ApiState(
        captive=False,
        user_portal_url="https://portal.test/",
        venue_info_url="https://venue.test/",
        can_extend_session=True,
        seconds_remaining=326.0,
        bytes_remaining=65536,
    )


def test_unknown_keys_ignored() -> None:
    state = parse({"captive": True, "future-key": {"nested": [1, 2]}})
    assert state == ApiState(captive=True)


def test_media_type_parameters_accepted() -> None:
    assert parse({"captive": True}, CAPTIVE_JSON + "; charset=utf-8").captive


def test_relative_portal_url_resolved() -> None:
    state = parse({"captive": True, "user-portal-url": "/portal"})
    assert state.user_portal_url == "https://api.test/portal"


def test_state_json_uses_rfc_keys() -> None:
    state = ApiState(captive=True, seconds_remaining=5.0)
    assert state.to_json() == {"captive": True, "seconds-remaining": 5.0}


@pytest.mark.parametrize(
    "document, message",
    [
        ({}, "no boolean 'captive'"),
        ({"captive": "false"}, "no boolean 'captive'"),
        ([True], "JSON list"),
        ({"captive": True, "seconds-remaining": -1}, "'seconds-remaining'"),
        ({"captive": True, "seconds-remaining": True}, "'seconds-remaining'"),
        ({"captive": True, "bytes-remaining": "many"}, "'bytes-remaining'"),
        ({"captive": True, "can-extend-session": 1}, "'can-extend-session'"),
        ({"captive": True, "user-portal-url": "javascript:x"}, "'user-portal-url'"),
        ({"captive": True, "venue-info-url": 7}, "'venue-info-url'"),
    ],
)
def test_invalid_state_rejected(document: object, message: str) -> None:
    with pytest.raises(CaptiveApiError, match=message):
        parse(document)


def test_wrong_media_type_rejected() -> None:
    with pytest.raises(CaptiveApiError, match="Content-Type 'text/html'"):
        parse({"captive": False}, "text/html")


def test_invalid_json_rejected() -> None:
    with pytest.raises(CaptiveApiError, match="invalid JSON"):
        parse_api_state(b"{captive: true", CAPTIVE_JSON, URI)


def test_oversized_answer_rejected() -> None:
    body = json.dumps({"captive": False, "pad": "x" * MAX_API_BODY_BYTES}).encode()
    with pytest.raises(CaptiveApiError, match="more than 4096 bytes"):
        parse_api_state(body, CAPTIVE_JSON, URI)


def test_plain_http_uri_rejected() -> None:
    with pytest.raises(CaptiveApiError, match="requires an https URI"):
        fetch_api_state("http://api.test/capport")
