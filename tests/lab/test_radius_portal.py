"""Signing in with RADIUS credentials through the real portal in the laboratory.

FreeRADIUS runs in the gateway's namespace on its loopback; the client
uses curl, as in the other laboratory tests. Every test leaves c1 captive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from clients import (
    clients_json,
    is_captive,
    is_online,
    open_splash,
    post_form,
    revoke_quietly,
)
from freeradius import (
    LIMITED_PASSWORD,
    LIMITED_USER,
    SESSION_TIMEOUT,
    FreeRadius,
)

from capport.lab import Lab
from capport.lab.flow import Form, Response, parse_page
from capport.lab.topology import ORIGIN_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

ROLE = "c1"
# Interims come every second in this laboratory; this leaves room for a
# loaded machine.
RECORD_TIMEOUT = 15.0


@pytest.fixture
def lab(radius_lab: tuple[Lab, FreeRadius]) -> Iterator[Lab]:
    built, _ = radius_lab
    try:
        yield built
    finally:
        revoke_quietly(built, built.macs[ROLE])


@pytest.fixture
def radius(radius_lab: tuple[Lab, FreeRadius]) -> FreeRadius:
    return radius_lab[1]


def login_form(lab: Lab) -> Form:
    """Follow the 511 to the portal and return its user name and password form."""
    splash = open_splash(lab, ROLE)
    _, _, forms = parse_page(splash.response.body, splash.portal_url)
    login_forms = [form for form in forms if urlsplit(form.action).path == "/login"]
    assert len(login_forms) == 1, forms
    form = login_forms[0]
    # The form carries the splash page's return token, so the browser goes
    # on to the page it first requested.
    assert "t" in form.fields
    return form


def sign_in(lab: Lab, password: str = LIMITED_PASSWORD) -> Response:
    return post_form(
        lab, ROLE, login_form(lab), username=LIMITED_USER, password=password
    )


def wait_for_record(
    radius: FreeRadius, skip: int, **fields: str
) -> dict[str, str] | None:
    """Wait for an accounting record with all of fields; None if none came.

    The first skip records, from earlier tests, are not considered. Field
    names use underscores for hyphens: Acct_Status_Type="Stop".
    """
    wanted = {name.replace("_", "-"): value for name, value in fields.items()}
    deadline = time.monotonic() + RECORD_TIMEOUT
    while time.monotonic() < deadline:
        for record in radius.accounting_records()[skip:]:
            if all(record.get(name) == value for name, value in wanted.items()):
                return record
        time.sleep(0.1)
    return None


def test_radius_login_reaches_origin(lab: Lab) -> None:
    response = sign_in(lab)
    assert response.status == 303
    assert response.header("location") == ORIGIN_URL
    assert is_online(lab, ROLE)


def test_wrong_password_stays_captive(lab: Lab) -> None:
    response = sign_in(lab, password="not-the-password")
    assert response.status == 403
    assert "incorrect" in response.body
    assert is_captive(lab, ROLE)


def test_session_length_from_radius(lab: Lab) -> None:
    sign_in(lab)
    rows = [row for row in clients_json(lab) if row["mac"] == lab.macs[ROLE]]
    assert len(rows) == 1
    remaining = float(rows[0]["remaining"])  # type: ignore[arg-type]
    # Session-Timeout is half an hour; the laboratory's default is an hour.
    assert SESSION_TIMEOUT - 60 < remaining <= SESSION_TIMEOUT


def test_accounting_follows_session(lab: Lab, radius: FreeRadius) -> None:
    station = lab.macs[ROLE].replace(":", "-").upper()
    before = len(radius.accounting_records())
    sign_in(lab)
    assert is_online(lab, ROLE)
    start = wait_for_record(
        radius, before, Acct_Status_Type="Start", Calling_Station_Id=station
    )
    assert start is not None, "no Accounting Start arrived"
    session_id = start["Acct-Session-Id"]
    assert start["Framed-IP-Address"] == lab.addresses[ROLE]
    assert start["NAS-Identifier"] == "capport-lab"
    revoke_quietly(lab, lab.macs[ROLE])
    stop = wait_for_record(
        radius, before, Acct_Status_Type="Stop", Acct_Session_Id=session_id
    )
    assert stop is not None, f"no Accounting Stop arrived for {session_id}"
    assert stop["Acct-Terminate-Cause"] == "Admin-Reset"
    # The origin request went through the firewall's counted rule.
    assert int(stop["Acct-Input-Octets"]) > 0
