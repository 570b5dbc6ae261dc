"""The login flow driven by Python's urllib, for a client namespace.

Run as `python -m capport.lab.probe` inside a client namespace. It prints
one JSON object per step on standard output and exits with 0 when every
step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlencode

from capport.lab.flow import Response, StepResult, flow_succeeded, run_login_flow
from capport.lab.origin import MARKER
from capport.lab.topology import GATEWAY_LAN_ADDRESS, ORIGIN_URL, PORTAL_HOST

TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 1 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Return 3xx responses to the caller instead of following them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# An empty ProxyHandler ignores http_proxy and friends from the environment:
# the flow must meet the gateway directly.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def fetch(method: str, url: str, form: dict[str, str] | None = None) -> Response:
    """Send one request with urllib, returning 3xx, 4xx and 5xx responses too."""
    data = urlencode(form).encode("ascii") if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as reply:
            return _response(reply.status, reply.headers, reply.read(MAX_BODY_BYTES))
    except urllib.error.HTTPError as error:
        # urllib raises HTTPError for every status from 300 on, but for the
        # flow these are ordinary responses to check.
        with error:
            return _response(error.code, error.headers, error.read(MAX_BODY_BYTES))


def _response(status: int, headers: Message, body: bytes) -> Response:
    charset = headers.get_content_charset() or "utf-8"
    return Response(
        status=status,
        headers=list(headers.items()),
        body=body.decode(charset, errors="replace"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m capport.lab.probe",
        description="Log in through the captive portal with urllib, step by step.",
    )
    parser.add_argument("--origin", default=ORIGIN_URL, help="URL to start from")
    parser.add_argument(
        "--marker", default=MARKER, help="text the origin page must contain"
    )
    options = parser.parse_args(argv)

    def report(step: StepResult) -> None:
        print(json.dumps(step.to_json()), flush=True)

    results = run_login_flow(
        fetch,
        options.origin,
        options.marker,
        portal_hosts={GATEWAY_LAN_ADDRESS, PORTAL_HOST},
        on_step=report,
    )
    return 0 if flow_succeeded(results) else 1


if __name__ == "__main__":
    sys.exit(main())
