"""Log in through the captive portal with headless Chromium, as a person would.

Run inside a client namespace of the laboratory, so that Chromium's traffic
goes through the gateway:

    ip netns exec NS .venv/bin/python tests/lab/browser_flow.py \\
        --marker "capport-lab-origin: you are online" \\
        --screenshots test-artifacts/browser

Chromium opens the origin URL, gets a 511, follows the meta refresh of its
body to the portal's splash page, and the script presses Accept. It then
checks the origin page, opens the portal's status page and signs out, taking
a screenshot at each stage. It prints one JSON object with what it saw and
exits with 0, or with 1 when a step raised an error (named in "error").
Playwright drives Debian's chromium through executable_path; it never
downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import (
    Page,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
# Chromium's sandbox does not start as root, so it is switched off. The other
# flags keep Chromium from contacting Google's services, which the laboratory
# cannot reach, and from trying QUIC, which the gateway rejects as it does
# any UDP of a device that has not logged in.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1024, "height": 768}


class FlowStopped(Exception):
    """A page is not the one the flow expected, so later steps cannot run."""


class NavigationLog:
    """The main frame's navigation responses and every failed request."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.navigations: list[tuple[int, str]] = []
        self.failed: list[str] = []
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def _on_response(self, response: Response) -> None:
        request = response.request
        if request.is_navigation_request() and request.frame == self._page.main_frame:
            self.navigations.append((response.status, response.url))

    def _on_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")


def run_flow(page: Page, options: argparse.Namespace, result: dict[str, Any]) -> None:
    """Drive the flow, filling result as each step completes."""
    timeout_ms = options.timeout * 1000
    shots = Path(options.screenshots)
    page.set_default_timeout(timeout_ms)
    portal = options.portal.rstrip("/")

    # Step 1: the gateway intercepts the request for the origin URL and
    # returns 511, whose meta refresh takes the browser to the splash page.
    first = page.goto(options.origin, wait_until="commit")
    result["first_status"] = first.status if first is not None else None
    result["first_url"] = first.url if first is not None else None
    page.wait_for_url(re.compile("^" + re.escape(portal) + r"/\?t="))
    accept = page.get_by_role("button", name="Accept")
    accept.wait_for(state="visible")
    page.wait_for_load_state("load")
    result["splash_url"] = page.url
    result["splash_title"] = page.title()
    page.screenshot(path=shots / "splash.png", full_page=True)
    result["screenshots"].append("splash.png")

    # Step 2: the portal redirects the Accept POST (303) to the URL first
    # requested.
    with page.expect_navigation(wait_until="load") as navigation:
        accept.click()
    landing = navigation.value
    result["final_url"] = page.url
    result["final_status"] = landing.status if landing is not None else None
    if page.url != options.origin:
        text = page.locator("body").inner_text()[:300]
        raise FlowStopped(f"Accept led to {page.url} instead of the origin: {text}")
    marker = page.get_by_text(options.marker)
    result["marker_visible"] = marker.is_visible()
    page.screenshot(path=shots / "origin.png", full_page=True)
    result["screenshots"].append("origin.png")

    # Step 3: the portal's status page, then signing out from it.
    page.goto(f"{portal}/status", wait_until="load")
    result["status_url"] = page.url
    result["status_connected"] = page.get_by_text("You are connected.").is_visible()
    page.screenshot(path=shots / "status.png", full_page=True)
    result["screenshots"].append("status.png")
    with page.expect_navigation(url=f"{portal}/logout", wait_until="load"):
        page.get_by_role("button", name="Sign out").click()
    result["signed_out_heading"] = page.locator("h1").inner_text()
    page.screenshot(path=shots / "signed_out.png", full_page=True)
    result["screenshots"].append("signed_out.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origin", default="http://origin.lab/")
    parser.add_argument("--portal", default="http://192.0.2.1/")
    parser.add_argument(
        "--marker", required=True, help="text the origin page must show"
    )
    parser.add_argument(
        "--screenshots", required=True, help="directory to write the PNG files to"
    )
    parser.add_argument(
        "--chromium", default=CHROMIUM, help="path of the Chromium executable"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="timeout of each step in seconds"
    )
    options = parser.parse_args(argv)
    Path(options.screenshots).mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {"error": None, "screenshots": []}
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
            viewport=VIEWPORT,
            timeout=options.timeout * 1000,
        )
        result["launch_seconds"] = round(time.monotonic() - started, 3)
        page = context.new_page()
        log = NavigationLog(page)
        try:
            run_flow(page, options, result)
        except (PlaywrightError, FlowStopped) as error:
            result["error"] = f"{type(error).__name__}: {error}"
            result["error_url"] = page.url
        finally:
            result["navigations"] = log.navigations
            result["failed_requests"] = log.failed
            context.close()
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result))
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
