"""Sign in to the operator dashboard with headless Chromium and revoke a device.

Run inside the gateway's namespace, whose loopback carries the admin
listener, with the admin token on stdin so that it never appears in a
process listing:

    echo "$TOKEN" | ip netns exec NS .venv/bin/python tests/lab/dashboard_flow.py \\
        --url http://127.0.0.1:8512/ --mac 02:00:00:00:00:11 \\
        --screenshots test-artifacts/dashboard

Chromium opens the dashboard, enters the token, finds the device's row,
searches for it, looks at the page at phone width, revokes the device
through the confirmation dialog and waits for the row to go. It then
creates vouchers on the voucher sheet page, in screen and print layouts,
and lays out pasted codes. It prints
one JSON object with what it saw and exits with 0, or with 1 when a step
raised an error (named in "error"). Playwright drives Debian's chromium
through executable_path; it never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from browser_flow import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
VOUCHER_COUNT = 6
PASTED_CODES = ("k7qxm3hnpd", "AB2CD-EF3GH")


class Recorder:
    """Screenshots and what the page's console reported."""

    def __init__(self, page: Page, directory: Path, result: dict[str, Any]) -> None:
        self.page = page
        self.directory = directory
        self.result = result
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: result["page_errors"].append(str(error)))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.result["console"].append(f"{message.type}: {message.text}")

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=self.directory / name, full_page=full_page)
        self.result["screenshots"].append(name)


def sign_in(page: Page, shots: Recorder, options: argparse.Namespace) -> None:
    """Step 1: the sign-in form, then the dashboard with the device's row."""
    page.goto(options.url, wait_until="load")
    page.locator("#token").wait_for(state="visible")
    shots.result["login_visible"] = True
    shots.shot("login.png", full_page=False)
    page.fill("#token", options.token)
    page.get_by_role("button", name="Sign in").click()
    row = page.locator(f"#session-rows tr[data-mac='{options.mac}']")
    row.wait_for(state="visible")
    # The charts arrive with the history request, the row with the clients.
    page.locator("#chart-traffic svg").wait_for()
    page.locator("#chart-active svg").wait_for()
    page.locator("#chart-logins svg").wait_for()
    shots.result["row_text"] = row.inner_text()
    shots.result["active_sessions"] = page.locator("#stat-active").inner_text()
    shots.shot("dashboard.png")


def search(page: Page, shots: Recorder, options: argparse.Namespace) -> None:
    """Step 2: a search for another address hides the row, one for its own shows it."""
    page.fill("#search", "192.0.2.250")
    shots.result["rows_for_other_search"] = page.locator("#session-rows tr").count()
    page.fill("#search", options.mac[-5:])
    shots.result["rows_for_own_search"] = page.locator("#session-rows tr").count()
    page.fill("#search", "")


def revoke(page: Page, shots: Recorder, options: argparse.Namespace) -> None:
    """Step 4: Revoke opens the dialog; confirming it removes the row."""
    page.get_by_role("button", name=f"Revoke {options.mac}").click()
    dialog = page.locator("#confirm-revoke")
    dialog.wait_for(state="visible")
    shots.result["dialog_text"] = dialog.inner_text()
    shots.shot("confirm.png", full_page=False)
    dialog.get_by_role("button", name="Revoke").click()
    row = page.locator(f"#session-rows tr[data-mac='{options.mac}']")
    row.wait_for(state="detached")
    shots.result["revoked_at"] = time.time()
    shots.result["error_text"] = page.locator("#app-error").inner_text()
    shots.shot("revoked.png")

    # The accounting CSV needs the token, so the page fetches it and hands
    # it to the browser as a download.
    with page.expect_download() as download:
        page.get_by_role("link", name="Accounting CSV").click()
    path = download.value.path()
    shots.result["accounting_csv"] = Path(path).read_text() if path else ""


def phone(page: Page, shots: Recorder) -> None:
    """Step 3: the same page at phone width must not scroll sideways."""
    page.set_viewport_size(PHONE)
    shots.result["phone_scroll_width"] = page.evaluate(
        "() => document.documentElement.scrollWidth"
    )
    shots.result["phone_sort_visible"] = page.locator("#sort-select").is_visible()
    page.select_option("#sort-select", "remaining:asc")
    shots.shot("phone.png")
    page.set_viewport_size(DESKTOP)


def voucher_sheet(page: Page, shots: Recorder, options: argparse.Namespace) -> None:
    """Step 5: create vouchers and lay them out, on screen and for print."""
    page.goto(options.url.rstrip("/") + "/vouchers/sheet", wait_until="load")
    page.locator("#create-form").wait_for(state="visible")
    page.fill("#count", str(VOUCHER_COUNT))
    page.fill("#duration", "2")
    page.select_option("#duration-unit", "3600")
    page.get_by_role("button", name="Create and lay out").click()
    cards = page.locator("#sheet .voucher")
    cards.nth(VOUCHER_COUNT - 1).wait_for()
    shots.result["voucher_codes"] = cards.locator(".code").all_inner_texts()
    shots.result["voucher_details"] = cards.first.locator(".details").inner_text()
    shots.shot("vouchers.png")
    page.emulate_media(media="print")
    shots.result["print_form_visible"] = page.locator("#create-form").is_visible()
    shots.shot("vouchers-print.png")
    page.emulate_media(media="screen")

    # Codes printed earlier by `capport vouchers create --csv` are laid out
    # from the text box, without asking the gateway.
    page.fill("#existing-codes", "\n".join(PASTED_CODES))
    page.get_by_role("button", name="Lay out", exact=True).click()
    cards.nth(len(PASTED_CODES) - 1).wait_for()
    shots.result["pasted_codes"] = cards.locator(".code").all_inner_texts()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8512/")
    parser.add_argument("--mac", required=True, help="the device to revoke")
    parser.add_argument("--screenshots", required=True, help="directory for PNGs")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="timeout of each step in seconds"
    )
    options = parser.parse_args(argv)
    options.token = sys.stdin.readline().strip()
    directory = Path(options.screenshots)
    directory.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {
        "error": None,
        "screenshots": [],
        "console": [],
        "page_errors": [],
    }
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="capport-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=options.chromium,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=DESKTOP,
            timeout=options.timeout * 1000,
        )
        page = context.new_page()
        page.set_default_timeout(options.timeout * 1000)
        shots = Recorder(page, directory, result)
        try:
            sign_in(page, shots, options)
            search(page, shots, options)
            phone(page, shots)
            revoke(page, shots, options)
            voucher_sheet(page, shots, options)
        except PlaywrightError as error:
            result["error"] = f"{type(error).__name__}: {error}"
            result["error_url"] = page.url
            page.screenshot(path=directory / "failed.png", full_page=True)
        finally:
            context.close()
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result))
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
