"""Open the HTTPS portal and its Captive Portal API with headless Chromium.

Run inside a client namespace of a laboratory built with tls=True. With
--spki, Chromium trusts the portal's certificate through
--ignore-certificate-errors-spki-list (honoured only with a user data
directory, which the persistent context provides). It then follows a 511
to the HTTPS splash page, presses Accept and reads the API. Without --spki
it only opens the splash page, to show that the certificate is otherwise
rejected. Prints one JSON object with what it saw.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from typing import Any

from browser_flow import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright


def log_in_and_read_api(page: Page, options: argparse.Namespace, result: Any) -> None:
    portal = options.portal.rstrip("/")
    first = page.goto(options.origin, wait_until="commit")
    result["first_status"] = first.status if first is not None else None
    page.wait_for_url(re.compile("^" + re.escape(portal) + r"/\?t="))
    accept = page.get_by_role("button", name="Accept")
    accept.wait_for(state="visible")
    result["splash_url"] = page.url
    with page.expect_navigation(wait_until="load"):
        accept.click()
    result["final_url"] = page.url
    response = page.goto(f"{portal}/api/captive", wait_until="load")
    assert response is not None
    result["api_status"] = response.status
    result["api_content_type"] = response.headers.get("content-type")
    result["api"] = json.loads(response.body())


def open_splash(page: Page, options: argparse.Namespace, result: Any) -> None:
    response = page.goto(options.portal, wait_until="load")
    result["splash_status"] = response.status if response is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origin", default="http://origin.lab/")
    parser.add_argument("--portal", default="https://portal.lab/")
    parser.add_argument("--spki", help="base64 SHA-256 of the portal's SPKI")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--timeout", type=float, default=60.0)
    options = parser.parse_args(argv)

    args = list(CHROMIUM_ARGS)
    if options.spki:
        args.append(f"--ignore-certificate-errors-spki-list={options.spki}")
    result: dict[str, Any] = {"error": None}
    with (
        tempfile.TemporaryDirectory(prefix="capport-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=options.chromium,
            args=args,
            headless=True,
            timeout=options.timeout * 1000,
        )
        page = context.new_page()
        page.set_default_timeout(options.timeout * 1000)
        try:
            if options.spki:
                log_in_and_read_api(page, options, result)
            else:
                open_splash(page, options, result)
        except (PlaywrightError, AssertionError, ValueError) as error:
            result["error"] = f"{type(error).__name__}: {error}"
        finally:
            context.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
