"""Durations past the 365-day maximum: rejected in days or the operator's units."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from capport.cli import main
from capport.config import (
    MAX_SESSION_SECONDS,
    check_session_length,
    format_days,
    parse_config,
)
from capport.errors import ConfigError
from capport.models import Device

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import Admin, start_admin  # noqa: E402

MAC = "02:00:00:00:00:11"
IP = "192.0.2.11"
DAY = 86400
MINIMAL = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}


@pytest.fixture
def admin() -> Iterator[Admin]:
    yield from start_admin()


def error_of(response) -> tuple[str | None, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    return body["field"], body["error"]


# Messages


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(400 * DAY, "400 days"), (DAY, "1 day"), (1.5 * DAY, "1.5 days"), (0, "0 days")],
)
def test_format_days(seconds: float, text: str) -> None:
    assert format_days(seconds) == text


def test_length_at_maximum_is_accepted() -> None:
    assert check_session_length(MAX_SESSION_SECONDS) == MAX_SESSION_SECONDS


def test_length_in_seconds_is_shown_in_days() -> None:
    with pytest.raises(ValueError, match=r"34560000 s \(400 days\) is longer than"):
        check_session_length(400 * DAY)


def test_length_keeps_operator_spelling() -> None:
    with pytest.raises(ValueError, match=r"duration 9000h \(375 days\) is longer"):
        check_session_length(9000 * 3600, given="9000h")


def test_length_in_days_is_not_repeated() -> None:
    with pytest.raises(ValueError, match=r"^duration 400d is longer than the maximum"):
        check_session_length(400 * DAY, given="400d")


def test_config_duration_is_reported_in_days() -> None:
    document = {**MINIMAL, "session": {"duration": "400d"}}
    with pytest.raises(ConfigError, match=r"session\.duration: .*\(400 days\)"):
        parse_config(document)


# The admin API


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/clients", {"mac": MAC, "ip": IP, "duration": 400 * DAY}, "duration"),
        ("/api/v1/vouchers", {"duration": 400 * DAY}, "duration"),
    ],
)
def test_api_reports_duration_in_days(
    admin: Admin, path: str, body: dict[str, object], field: str
) -> None:
    response = admin.post(path, body)
    assert response.status_code == 422
    reported_field, message = error_of(response)
    assert reported_field == field
    assert "(400 days)" in message
    assert "maximum of 365 days" in message
    assert "less than or equal" not in message


def test_api_extension_over_maximum_is_422(admin: Admin) -> None:
    admin.grant(MAC, IP, duration=600)
    response = admin.post(f"/api/v1/clients/{MAC}/extend", {"seconds": 365 * DAY})
    assert response.status_code == 422
    field, message = error_of(response)
    assert field == "seconds"
    assert "maximum of 365 days" in message
    assert "extend it by at most" in message


def test_api_rejected_extension_keeps_deadline(admin: Admin) -> None:
    admin.grant(MAC, IP, duration=600)
    admin.post(f"/api/v1/clients/{MAC}/extend", {"seconds": 365 * DAY})
    assert admin.enforcer.devices[Device.parse(MAC, IP)] == 600


def test_api_extension_up_to_maximum_is_allowed(admin: Admin) -> None:
    admin.grant(MAC, IP, duration=DAY)
    response = admin.post(f"/api/v1/clients/{MAC}/extend", {"seconds": 300 * DAY})
    assert response.status_code == 200, response.text


def test_openapi_keeps_duration_maximum(admin: Admin) -> None:
    schema = admin.get("/api/v1/openapi.json").json()
    properties = schema["components"]["schemas"]["ExtendRequest"]["properties"]
    assert properties["seconds"]["maximum"] == MAX_SESSION_SECONDS


# The command line


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["grant", MAC, IP, "--duration", "400d"], "duration 400d is longer"),
        (["extend", MAC, "9000h"], "duration 9000h (375 days) is longer"),
        (["vouchers", "create", "--duration", "400d"], "duration 400d is longer"),
    ],
)
def test_cli_reports_duration_as_given(
    tmp_path: Path, args: list[str], shown: str
) -> None:
    # The option is checked before any connection to the gateway is made.
    socket_path = tmp_path / "missing.sock"
    result = CliRunner().invoke(main, [*args, "--socket", str(socket_path)])
    assert result.exit_code == 2
    assert shown in result.output
    assert "maximum of 365 days" in result.output
