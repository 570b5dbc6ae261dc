"""Headless Chromium logs in through the gateway from a client namespace.

browser_flow.py runs once per module inside c1's namespace of a laboratory
built for this module, so every request Chromium makes passes the gateway's
nftables rules. Each test checks one field of the JSON it prints. The
screenshots stay in test-artifacts/browser/ for people to look at.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from capport.lab import Lab, LabError, down, up
from capport.lab.origin import MARKER
from capport.lab.topology import ORIGIN_URL, PORTAL_URL

pytestmark = [pytest.mark.lab, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("browser_flow.py")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
SCREENSHOT_NAMES = ("splash.png", "origin.png", "status.png", "signed_out.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The four pages measured 9 to 31 KB with Chromium 156 at 1024x768. A
# smaller file would mean a page with next to nothing on it.
MIN_SCREENSHOT_BYTES = 5000

# Chromium 156 starts in about 1.4 s on a 2-core machine and the whole flow
# takes about 2 s, so these bounds only catch a hang.
STEP_TIMEOUT_SECONDS = 60
SCRIPT_TIMEOUT_SECONDS = 180


@pytest.fixture(scope="module")
def browser_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    """A laboratory of this module's own, so c1's session affects no other test."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; scripts/install installs chromium")
    pytest.importorskip("playwright", reason="install the test extras: .[test]")
    prefix = new_prefix("b")
    built = up(prefix)
    try:
        yield built
    finally:
        down(prefix)


@pytest.fixture(scope="module")
def flow(browser_lab: Lab) -> dict[str, Any]:
    """Run browser_flow.py in c1 and return the JSON object it printed."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    argv = [
        sys.executable,
        str(SCRIPT),
        "--origin", ORIGIN_URL,
        "--portal", PORTAL_URL,
        "--marker", MARKER,
        "--screenshots", str(SCREENSHOTS),
        "--chromium", str(CHROMIUM),
        "--timeout", str(STEP_TIMEOUT_SECONDS),
    ]  # fmt: skip
    try:
        result = browser_lab.run("c1", argv, timeout=SCRIPT_TIMEOUT_SECONDS)
    except LabError as error:
        pytest.fail(f"browser_flow.py did not finish: {error}")
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(
            f"browser_flow.py exited with {result.returncode} without JSON.\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
        )
    (SCREENSHOTS / "result.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def test_flow_completes_without_error(flow: dict[str, Any]) -> None:
    assert flow["error"] is None, flow


def test_first_response_is_511(flow: dict[str, Any]) -> None:
    assert flow["first_url"] == ORIGIN_URL
    assert flow["first_status"] == 511


def test_meta_refresh_reaches_splash(flow: dict[str, Any]) -> None:
    assert flow["splash_url"].startswith(f"{PORTAL_URL}?t=")
    assert flow["navigations"][1] == [200, flow["splash_url"]]


def test_accept_returns_to_origin(flow: dict[str, Any]) -> None:
    assert flow.get("final_url") == ORIGIN_URL, flow


def test_origin_marker_visible(flow: dict[str, Any]) -> None:
    assert flow.get("marker_visible") is True, flow


def test_status_page_shows_session(flow: dict[str, Any]) -> None:
    assert flow.get("status_url") == f"{PORTAL_URL}status", flow
    assert flow.get("status_connected") is True, flow


def test_sign_out_page_shown(flow: dict[str, Any]) -> None:
    assert flow.get("signed_out_heading") == "Signed out", flow


def test_no_request_failed(flow: dict[str, Any]) -> None:
    assert flow["failed_requests"] == []


def test_no_portal_error_status(flow: dict[str, Any]) -> None:
    portal_statuses = [
        status for status, url in flow["navigations"] if url.startswith(PORTAL_URL)
    ]
    assert portal_statuses, flow["navigations"]
    assert all(status < 400 for status in portal_statuses), flow["navigations"]


@pytest.mark.parametrize("name", SCREENSHOT_NAMES)
def test_screenshot_written(flow: dict[str, Any], name: str) -> None:
    path = SCREENSHOTS / name
    assert name in flow["screenshots"], flow
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size >= MIN_SCREENSHOT_BYTES


def test_signed_out_device_captive_again(
    flow: dict[str, Any], browser_lab: Lab
) -> None:
    assert flow.get("signed_out_heading") == "Signed out", flow
    probe = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
    result = browser_lab.run("c1", [*probe, ORIGIN_URL])
    assert result.stdout == "511"
