"""Signing in with a local user and with a voucher through the real portal.

The clients use curl from their namespaces. Users and vouchers are created
with the capport command line through the running gateway's control socket,
as an operator would. Every test leaves both clients captive.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from clients import (
    curl,
    is_captive,
    is_online,
    log_text,
    open_splash,
    revoke_quietly,
)

from capport.lab import Lab, down, up
from capport.lab.flow import Form, Response, parse_page
from capport.lab.topology import ORIGIN_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

AUTH_CONFIG = {
    "auth": {
        "methods": ["click-through", "voucher", "user"],
        "device_limit_policy": "reject",
    }
}
PASSWORD = "lab-password-71"


@pytest.fixture(scope="module")
def auth_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    """A laboratory whose portal offers all three methods, shared by this module."""
    lab = up(new_prefix("a"), extra_config=AUTH_CONFIG)
    try:
        yield lab
    finally:
        down(lab.prefix)


@pytest.fixture
def clean(auth_lab: Lab) -> Iterator[Lab]:
    """The shared laboratory, with both clients revoked after the test."""
    try:
        yield auth_lab
    finally:
        for role in ("c1", "c2"):
            revoke_quietly(auth_lab, auth_lab.macs[role])


def run_capport(lab: Lab, *args: str, stdin: str = "") -> str:
    """Run a capport command on the laboratory's gateway; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "capport", *args, "--socket", str(lab.control_socket)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def add_user(lab: Lab, name: str, devices: int | None = None) -> None:
    extra = ["--devices", str(devices)] if devices is not None else []
    run_capport(lab, "users", "add", name, "--password-stdin", *extra, stdin=PASSWORD)


def create_voucher(lab: Lab, *options: str) -> str:
    codes = run_capport(lab, "vouchers", "create", "--duration", "10m", *options)
    return codes.split()[0]


def sign_in_form(lab: Lab, role: str, action: str) -> Form:
    """Follow role's 511 to the portal and return the form that posts to action."""
    splash = open_splash(lab, role)
    _, _, forms = parse_page(splash.response.body, splash.portal_url)
    for form in forms:
        if urlsplit(form.action).path == action:
            return form
    raise AssertionError(f"the splash page has no form for {action}")


def submit(lab: Lab, role: str, action: str, **fields: str) -> Response:
    form = sign_in_form(lab, role, action)
    return curl(lab, role, form.action, form={**form.fields, **fields})


def test_user_reaches_origin(clean: Lab) -> None:
    add_user(clean, "walter")
    assert is_captive(clean, "c1")
    response = submit(clean, "c1", "/login", username="Walter", password=PASSWORD)
    assert response.status == 303
    assert response.header("location") == ORIGIN_URL
    assert is_online(clean, "c1")
    assert is_captive(clean, "c2")


def test_wrong_password_stays_captive(clean: Lab) -> None:
    add_user(clean, "wendy")
    response = submit(clean, "c1", "/login", username="wendy", password="nope")
    assert response.status == 403
    assert "user name or password is incorrect" in response.body
    assert is_captive(clean, "c1")


def test_voucher_reaches_origin(clean: Lab) -> None:
    code = create_voucher(clean)
    typed = code.replace("-", "").lower()
    response = submit(clean, "c1", "/voucher", code=typed)
    assert response.status == 303
    assert is_online(clean, "c1")


def test_used_up_voucher_is_refused(clean: Lab) -> None:
    code = create_voucher(clean, "--uses", "1", "--devices", "2")
    assert submit(clean, "c1", "/voucher", code=code).status == 303
    refused = submit(clean, "c2", "/voucher", code=code)
    assert refused.status == 403
    assert "used up" in refused.body
    assert is_online(clean, "c1")
    assert is_captive(clean, "c2")


def test_user_device_limit_rejects_second(clean: Lab) -> None:
    add_user(clean, "vera", devices=1)
    assert (
        submit(clean, "c1", "/login", username="vera", password=PASSWORD).status == 303
    )
    second = submit(clean, "c2", "/login", username="vera", password=PASSWORD)
    assert second.status == 409
    assert "already in use on 1 device" in second.body
    assert is_online(clean, "c1")
    assert is_captive(clean, "c2")


def test_secrets_stay_out_of_gateway_log(clean: Lab) -> None:
    add_user(clean, "xena")
    code = create_voucher(clean)
    submit(clean, "c1", "/login", username="xena", password="wrong-" + PASSWORD)
    submit(clean, "c1", "/login", username="xena", password=PASSWORD)
    submit(clean, "c2", "/voucher", code=code)
    log = log_text(clean)
    assert "Granted session" in log
    assert PASSWORD not in log
    assert code not in log
    assert code.replace("-", "") not in log


@pytest.mark.lab_config(
    extra_config={"auth": {"methods": ["voucher"], "device_limit_policy": "end-oldest"}}
)
def test_voucher_device_limit_ends_oldest(fresh_lab: Lab) -> None:
    code = create_voucher(fresh_lab, "--devices", "1")
    assert submit(fresh_lab, "c1", "/voucher", code=code).status == 303
    assert is_online(fresh_lab, "c1")
    assert submit(fresh_lab, "c2", "/voucher", code=code).status == 303
    assert is_online(fresh_lab, "c2")
    assert is_captive(fresh_lab, "c1")
