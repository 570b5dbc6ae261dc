"""Headless Chromium trusts the HTTPS portal by its SPKI hash and reads the API.

browser_https.py runs in c1's namespace of a TLS laboratory built for this
module. Chromium trusts the laboratory's certificate only through
--ignore-certificate-errors-spki-list with the hash `capport tls init`
reports, so one run without the flag checks that the trust comes from it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from capport.lab import Lab, LabError, down, up
from capport.tlsinit import spki_hash

pytestmark = [pytest.mark.lab, pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("browser_https.py")
PORTAL = "https://portal.lab/"
ORIGIN = "http://origin.lab/"


@pytest.fixture(scope="module")
def https_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; scripts/install installs chromium")
    pytest.importorskip("playwright", reason="install the test extras: .[test]")
    built = up(new_prefix("h"), tls=True)
    try:
        yield built
    finally:
        down(built.prefix)


def run_browser(lab: Lab, *options: str) -> dict[str, Any]:
    argv = [sys.executable, str(SCRIPT), "--chromium", str(CHROMIUM), *options]
    try:
        result = lab.run("c1", argv, timeout=180)
    except LabError as error:
        pytest.fail(f"browser_https.py did not finish: {error}")
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"no JSON from browser_https.py: {result.stderr[-3000:]}")
    return data


def portal_spki(lab: Lab) -> str:
    certificate_path = lab.ca_path.with_name("portal.pem")
    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    return spki_hash(certificate)


@pytest.fixture(scope="module")
def trusted(https_lab: Lab) -> dict[str, Any]:
    return run_browser(https_lab, "--spki", portal_spki(https_lab))


def test_untrusted_certificate_is_rejected(https_lab: Lab) -> None:
    result = run_browser(https_lab)
    assert result["error"] is not None
    assert "ERR_CERT_AUTHORITY_INVALID" in result["error"]


def test_511_leads_to_https_splash(trusted: dict[str, Any]) -> None:
    assert trusted["error"] is None, trusted
    assert trusted["first_status"] == 511
    assert trusted["splash_url"].startswith(PORTAL + "?t=")


def test_accept_over_https_returns_to_origin(trusted: dict[str, Any]) -> None:
    assert trusted.get("final_url") == ORIGIN, trusted


def test_api_in_browser_is_not_captive(trusted: dict[str, Any]) -> None:
    assert trusted.get("api_status") == 200, trusted
    assert trusted["api_content_type"] == "application/captive+json"
    assert trusted["api"]["captive"] is False
    assert trusted["api"]["user-portal-url"] == PORTAL
