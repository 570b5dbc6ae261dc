"""The client's RFC 8908 API support against the laboratory's HTTPS portal.

One laboratory with `tls=True` serves the module. Every program runs in a
client namespace with `ip netns exec`, and a trusting client passes the
laboratory's CA file (`ca_file=` in the library, `--ca-file` in the
commands). Tests that log a client in revoke its access in a finally clause,
so each test starts with both clients captive.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from capport.lab import Lab, down, up
from capport.lab.demo import parse_curl_output
from capport.lab.flow import Response

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]

PORTAL = "https://portal.lab/"
API = "https://portal.lab/api/captive"
VENUE = "http://origin.lab/x/venue"
SESSION_SECONDS = 600
# The 511 page links to the portal with a token for the requested page.
LINK_PREFIX = f"{PORTAL}?t="
# The origin echoes /x/... paths as text, so the probe's response is known.
PROBE_URL = "http://origin.lab/x/probe"
PROBE_OPTIONS = ["--probe-url", PROBE_URL, "--expect-body", "/x/probe"]
CAPTIVE_BY_API = (
    f"captive: log in at {PORTAL}\n"
    f"The Captive Portal API at {API} reports this device captive.\n"
)
ONLINE_BY_PROBE = f"online: The probe {PROBE_URL} got its expected response (200).\n"
# OpenSSL's reason for a certificate chain that no trusted CA signed.
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="module")
def tls_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    built = up(new_prefix("k"), session_duration=float(SESSION_SECONDS), tls=True)
    try:
        yield built
    finally:
        down(built.prefix)


def client_env() -> dict[str, str]:
    """Return this process's environment without OpenSSL trust overrides.

    Without SSL_CERT_FILE and SSL_CERT_DIR, a client that gets no CA file
    trusts exactly the system's store, which does not contain the
    laboratory's CA.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("SSL_CERT_FILE", "SSL_CERT_DIR")
    }


def run_in(
    lab: Lab, role: str, argv: Sequence[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lab.exec_argv(role, argv),
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=timeout,
        check=False,
    )


def run_bytes(
    lab: Lab, role: str, argv: Sequence[str], timeout: float = 15
) -> subprocess.CompletedProcess[bytes]:
    """Run argv in role's namespace, keeping its output's CRLF line ends."""
    return subprocess.run(
        lab.exec_argv(role, argv),
        capture_output=True,
        env=client_env(),
        timeout=timeout,
        check=False,
    )


def run_program(lab: Lab, role: str, program: str) -> Any:
    """Run a Python program in role's namespace and return the JSON it prints."""
    result = run_in(lab, role, [sys.executable, "-c", program])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_argv(*options: str) -> list[str]:
    return [sys.executable, "-m", "capport", "check", *PROBE_OPTIONS, *options]


def curl(lab: Lab, role: str, url: str, *options: str) -> Response:
    argv = ["curl", "-sS", "--include", "--max-time", "5"]
    argv += ["--cacert", str(lab.ca_path), *options, url]
    result = run_bytes(lab, role, argv)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return parse_curl_output(result.stdout.decode("utf-8", errors="replace"))


def log_in(lab: Lab, role: str) -> None:
    """Accept the terms on the HTTPS portal with curl, as a person would."""
    splash = curl(lab, role, PORTAL)
    match = re.search(r'name="csrf" value="([^"]+)"', splash.body)
    assert match is not None, splash.body[:300]
    accepted = curl(lab, role, PORTAL + "accept", "--data-raw", f"csrf={match[1]}")
    assert accepted.status == 303, accepted.body[:300]


def revoke(lab: Lab, role: str) -> None:
    """End role's access through the control socket, if it has any."""
    argv = [sys.executable, "-m", "capport", "revoke", lab.macs[role]]
    argv += ["--socket", str(lab.control_socket)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 or "no authorised device" in result.stderr, (
        result.stderr
    )


@contextmanager
def logged_in(lab: Lab, role: str) -> Iterator[None]:
    """Log role in for the block and revoke its access afterwards, even on failure."""
    try:
        log_in(lab, role)
        yield
    finally:
        revoke(lab, role)


def api_state(lab: Lab, role: str) -> dict[str, Any]:
    """Fetch the API state once with the library, trusting the laboratory's CA."""
    program = f"""
import json
from capport.client.api import fetch_api_state
state = fetch_api_state({API!r}, ca_file={str(lab.ca_path)!r})
print(json.dumps(state.to_json()))
"""
    state: dict[str, Any] = run_program(lab, role, program)
    return state


# The library's API client


def test_api_client_before_login_is_captive(tls_lab: Lab) -> None:
    state = api_state(tls_lab, "c1")
    assert state == {
        "captive": True,
        "user-portal-url": PORTAL,
        "venue-info-url": VENUE,
    }


def test_api_client_after_login_is_not_captive(tls_lab: Lab) -> None:
    with logged_in(tls_lab, "c2"):
        state = api_state(tls_lab, "c2")
    assert state["captive"] is False
    assert state["user-portal-url"] == PORTAL
    assert state["venue-info-url"] == VENUE
    assert state["can-extend-session"] is False


TWO_REFRESHES = """
import json, time
from capport.client import CaptivePortalApi
api = CaptivePortalApi({api!r}, ca_file={ca!r})
first = api.refresh()
time.sleep(2.1)
second = api.refresh()
print(json.dumps({{
    "first": first.seconds_remaining if first else None,
    "second": second.seconds_remaining if second else None,
    "captive": api.captive,
    "error": str(api.last_error) if api.last_error else None,
}}))
"""


def test_api_client_seconds_remaining_counts_down(tls_lab: Lab) -> None:
    program = TWO_REFRESHES.format(api=API, ca=str(tls_lab.ca_path))
    with logged_in(tls_lab, "c2"):
        out = run_program(tls_lab, "c2", program)
    assert out["error"] is None
    assert out["captive"] is False
    first, second = out["first"], out["second"]
    # Logging in and starting Python take far less than 30 s of the session.
    assert SESSION_SECONDS - 30 < first <= SESSION_SECONDS
    # The server rounds down, so 2.1 s later the value is at least 2 lower.
    assert 2 <= first - second <= 5
    assert second > 0


def test_api_client_sees_revocation(tls_lab: Lab) -> None:
    with logged_in(tls_lab, "c1"):
        assert api_state(tls_lab, "c1")["captive"] is False
    assert api_state(tls_lab, "c1")["captive"] is True


# capport check and capport login with --api-uri and --ca-file


def test_check_with_api_captive_then_online(tls_lab: Lab) -> None:
    argv = check_argv("--api-uri", API, "--ca-file", str(tls_lab.ca_path))
    captive = run_in(tls_lab, "c1", argv)
    assert captive.returncode == 1, captive.stdout + captive.stderr
    assert captive.stdout == CAPTIVE_BY_API

    with logged_in(tls_lab, "c1"):
        online = run_in(tls_lab, "c1", argv)
    assert online.returncode == 0, online.stdout + online.stderr
    assert online.stdout == ONLINE_BY_PROBE


def test_check_json_reports_api_state(tls_lab: Lab) -> None:
    argv = check_argv("--api-uri", API, "--ca-file", str(tls_lab.ca_path), "--json")
    with logged_in(tls_lab, "c2"):
        result = run_in(tls_lab, "c2", argv)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "online"
    assert data["api_uri"] == API
    assert data["api"]["captive"] is False
    assert 0 < data["api"]["seconds-remaining"] <= SESSION_SECONDS


def test_login_with_api_exits_once_logged_in(tls_lab: Lab) -> None:
    argv = [sys.executable, "-m", "capport", "login", *PROBE_OPTIONS]
    argv += ["--api-uri", API, "--ca-file", str(tls_lab.ca_path)]
    argv += ["--timeout", "60", "--interval", "0.5"]
    process = subprocess.Popen(
        tls_lab.exec_argv("c2", argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(),
    )
    assert process.stdout is not None
    with process:
        try:
            ready, _, _ = select.select([process.stdout], [], [], 20)
            assert ready, "capport login printed nothing within 20 s"
            assert process.stdout.readline() == f"Log in at: {PORTAL}\n"
            with logged_in(tls_lab, "c2"):
                rest, errors = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, errors
    assert rest.startswith("online: the network opened after ")


# A client that does not trust the laboratory's CA

UNTRUSTED_PROGRAM = f"""
import json
from capport.client import CaptivePortalApi
from capport.client.errors import CaptiveApiError
from capport.client.api import fetch_api_state
out = {{}}
try:
    fetch_api_state({API!r})
except CaptiveApiError as error:
    out["raised"] = str(error)
api = CaptivePortalApi({API!r})
out["refreshed"] = api.refresh() is not None
out["captive"] = api.captive
out["last_error"] = str(api.last_error)
print(json.dumps(out))
"""


def test_untrusted_api_raises_verify_error(tls_lab: Lab) -> None:
    out = run_program(tls_lab, "c1", UNTRUSTED_PROGRAM)
    assert out["raised"].startswith(f"cannot fetch the Captive Portal API at {API}: ")
    assert VERIFY_FAILED in out["raised"]
    assert out["refreshed"] is False
    assert out["captive"] is None
    assert VERIFY_FAILED in out["last_error"]


def test_untrusted_check_falls_back_to_probe(tls_lab: Lab) -> None:
    result = run_in(tls_lab, "c1", check_argv("--api-uri", API))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    first_line, detail = result.stdout.split("\n", 1)
    # The probe's 511, not the API, found the portal.
    assert first_line.startswith(f"captive: log in at {LINK_PREFIX}")
    assert f"The API gave no state: cannot fetch the Captive Portal API at {API}: " in (
        detail
    )
    assert VERIFY_FAILED in detail


def test_untrusted_check_json_has_no_api_state(tls_lab: Lab) -> None:
    result = run_in(tls_lab, "c1", check_argv("--api-uri", API, "--json"))
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "captive"
    assert data["detected_by"] == "status-511"
    assert data["api_uri"] == API
    assert data["api"] is None
    assert VERIFY_FAILED in data["detail"]
