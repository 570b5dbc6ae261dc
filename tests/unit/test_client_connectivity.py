"""Classifying a probe's response, and the check's offline case."""

from __future__ import annotations

import socket

import pytest

from capport.client import DetectionKind, Expectation, Probe, State, check_connectivity
from capport.client.connectivity import classify_response

PROBE = Probe("http://probe.test/check", Expectation(204, b""), timeout=1)


def test_expected_answer_is_online() -> None:
    result = classify_response(PROBE, 204, {}, b"")
    assert result.state is State.ONLINE
    assert result.http_status == 204


def test_511_is_captive_with_portal() -> None:
    body = b'<meta http-equiv="refresh" content="0; url=http://gw.test/login">'
    result = classify_response(PROBE, 511, {}, body)
    assert result.state is State.CAPTIVE
    assert result.portal_url == "http://gw.test/login"


def test_foreign_redirect_is_captive() -> None:
    result = classify_response(PROBE, 302, {"Location": "http://gw.test/"}, b"")
    assert result.state is State.CAPTIVE
    assert result.portal is not None
    assert result.portal.kind is DetectionKind.REDIRECT


@pytest.mark.parametrize("status", [200, 401, 407, 500, 503])
def test_other_answer_is_limited(status: int) -> None:
    result = classify_response(PROBE, status, {}, b"something else")
    assert result.state is State.LIMITED
    assert f"got {status} where 204 was expected" in result.detail


def test_unresolvable_probe_is_offline() -> None:
    def no_names(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = check_connectivity(PROBE, resolve=no_names)
    assert result.state is State.OFFLINE
    assert "Cannot resolve probe.test" in result.detail


def test_result_json_names_state_and_portal() -> None:
    body = b'<a href="http://gw.test/login">in</a>'
    data = classify_response(PROBE, 511, {}, body).to_json()
    assert data["state"] == "captive"
    assert data["portal_url"] == "http://gw.test/login"
    assert data["detected_by"] == "status-511"
    assert data["http_status"] == 511
