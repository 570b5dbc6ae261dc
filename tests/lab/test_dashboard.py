"""An operator revokes a signed-in device from the dashboard in headless Chromium.

c1 logs in through the real portal, then dashboard_flow.py runs once per
module inside the gateway's namespace, because the admin listener is on
that namespace's loopback. Each test checks one part of what the flow or
the gateway did. The screenshots stay in test-artifacts/dashboard/ for
people to look at.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import capport, is_captive, log_in, log_text

from capport.lab import Lab, LabError, down, up

pytestmark = [pytest.mark.lab, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("dashboard_flow.py")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
SCREENSHOT_NAMES = (
    "login.png",
    "dashboard.png",
    "confirm.png",
    "revoked.png",
    "phone.png",
    "vouchers.png",
    "vouchers-print.png",
)
ADMIN_URL = "http://127.0.0.1:8512/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The smallest of these pages, the sign-in form, measured about 20 KB with
# Chromium 156; a much smaller file would be a blank page.
MIN_SCREENSHOT_BYTES = 5000
VOUCHER_COUNT = 6
PHONE_WIDTH = 390
# Each step waits at most this long; the whole flow takes a few seconds.
STEP_TIMEOUT_SECONDS = 60
SCRIPT_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def dashboard_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    """A laboratory of this module's own, so revoking c1 affects no other test."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; scripts/install installs chromium")
    pytest.importorskip("playwright", reason="install the test extras: .[test]")
    prefix = new_prefix("d")
    built = up(prefix)
    try:
        yield built
    finally:
        down(prefix)


@pytest.fixture(scope="module")
def token(dashboard_lab: Lab) -> str:
    """An admin token made with the command line, as an operator would."""
    result = capport(
        "tokens", "create", "dashboard", "--config", str(dashboard_lab.config_path)
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def flow(dashboard_lab: Lab, token: str) -> dict[str, Any]:
    """Log c1 in, run dashboard_flow.py in the gateway and return its JSON."""
    log_in(dashboard_lab, "c1")
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    argv = [
        sys.executable,
        str(SCRIPT),
        "--url", ADMIN_URL,
        "--mac", dashboard_lab.macs["c1"],
        "--screenshots", str(SCREENSHOTS),
        "--chromium", str(CHROMIUM),
        "--timeout", str(STEP_TIMEOUT_SECONDS),
    ]  # fmt: skip
    try:
        result = dashboard_lab.run(
            "gw", argv, timeout=SCRIPT_TIMEOUT_SECONDS, input=token + "\n"
        )
    except LabError as error:
        pytest.fail(f"dashboard_flow.py did not finish: {error}")
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(
            f"dashboard_flow.py exited with {result.returncode} without JSON.\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
        )
    (SCREENSHOTS / "result.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def test_flow_completes_without_error(flow: dict[str, Any]) -> None:
    assert flow["error"] is None, flow


def test_sign_in_form_shown_first(flow: dict[str, Any]) -> None:
    assert flow.get("login_visible") is True, flow


def test_row_shows_signed_in_device(flow: dict[str, Any], dashboard_lab: Lab) -> None:
    row = flow.get("row_text", "")
    assert dashboard_lab.macs["c1"] in row, flow
    assert dashboard_lab.addresses["c1"] in row
    assert "click-through" in row


def test_status_card_counts_session(flow: dict[str, Any]) -> None:
    assert flow.get("active_sessions") == "1", flow


def test_search_filters_rows(flow: dict[str, Any]) -> None:
    assert flow.get("rows_for_other_search") == 0, flow
    assert flow.get("rows_for_own_search") == 1, flow


def test_dialog_names_device(flow: dict[str, Any], dashboard_lab: Lab) -> None:
    text = flow.get("dialog_text", "")
    assert "Revoke access?" in text, flow
    assert dashboard_lab.macs["c1"] in text
    assert dashboard_lab.addresses["c1"] in text


def test_revoke_reports_no_error(flow: dict[str, Any]) -> None:
    assert "revoked_at" in flow, flow
    assert flow["error_text"] == ""


def test_revoked_device_captive_again(flow: dict[str, Any], dashboard_lab: Lab) -> None:
    assert "revoked_at" in flow, flow
    assert is_captive(dashboard_lab, "c1")


def test_revoke_recorded_for_accounting(
    flow: dict[str, Any], dashboard_lab: Lab
) -> None:
    assert "revoked_at" in flow, flow
    result = capport("accounting", "export", "--config", str(dashboard_lab.config_path))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    mine = [row for row in rows if row["mac"] == dashboard_lab.macs["c1"]]
    assert len(mine) == 1, rows
    assert mine[0]["end_reason"] == "revoked"
    assert mine[0]["method"] == "click-through"


def test_accounting_download_lists_revoke(
    flow: dict[str, Any], dashboard_lab: Lab
) -> None:
    rows = list(csv.DictReader(io.StringIO(flow.get("accounting_csv", ""))))
    mine = [row for row in rows if row["mac"] == dashboard_lab.macs["c1"]]
    assert [row["end_reason"] for row in mine] == ["revoked"], flow


def test_phone_layout_fits_width(flow: dict[str, Any]) -> None:
    assert flow.get("phone_scroll_width") == PHONE_WIDTH, flow


def test_phone_offers_sort_menu(flow: dict[str, Any]) -> None:
    assert flow.get("phone_sort_visible") is True, flow


def test_voucher_sheet_shows_codes(flow: dict[str, Any]) -> None:
    codes = flow.get("voucher_codes", [])
    assert len(codes) == VOUCHER_COUNT, flow
    assert all(len(code) == 11 and code[5] == "-" for code in codes), codes
    assert len(set(codes)) == VOUCHER_COUNT


def test_voucher_sheet_states_terms(flow: dict[str, Any]) -> None:
    assert flow.get("voucher_details") == "2 hours of access · 1 device", flow


def test_pasted_codes_laid_out(flow: dict[str, Any]) -> None:
    assert flow.get("pasted_codes") == ["K7QXM-3HNPD", "AB2CD-EF3GH"], flow


def test_print_layout_hides_forms(flow: dict[str, Any]) -> None:
    assert flow.get("print_form_visible") is False, flow


def test_vouchers_stored(flow: dict[str, Any], dashboard_lab: Lab) -> None:
    assert flow.get("voucher_codes"), flow
    result = capport(
        "vouchers", "list", "--json", "--config", str(dashboard_lab.config_path)
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == VOUCHER_COUNT


def test_no_console_errors(flow: dict[str, Any]) -> None:
    assert flow["console"] == []
    assert flow["page_errors"] == []


def test_portal_requests_in_access_log(
    flow: dict[str, Any], dashboard_lab: Lab
) -> None:
    assert flow["error"] is None, flow
    lines = [
        line
        for line in log_text(dashboard_lab).splitlines()
        if "capport.access" in line
    ]
    assert any(" POST /accept 303 " in line for line in lines), lines[-20:]


@pytest.mark.parametrize("name", SCREENSHOT_NAMES)
def test_screenshot_written(flow: dict[str, Any], name: str) -> None:
    path = SCREENSHOTS / name
    assert name in flow["screenshots"], flow
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size >= MIN_SCREENSHOT_BYTES
