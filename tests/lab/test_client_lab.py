"""The client library and commands against the real gateway, from a client namespace.

Each program runs with `ip netns exec` in a client namespace, so its
requests take the path a captive device's would: nftables redirects its
port 80 to the responder, which responds with a 511. Tests that log a client in
revoke it again, so the shared laboratory's clients stay captive.
"""

from __future__ import annotations

import hashlib
import json
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from capport.lab import Lab
from capport.lab.demo import CurlFetch
from capport.lab.flow import flow_succeeded, parse_page, run_login_flow
from capport.lab.origin import MARKER
from capport.lab.topology import GATEWAY_LAN_ADDRESS, ORIGIN_URL, PORTAL_HOST

pytestmark = pytest.mark.lab

PORTAL_HOSTS = frozenset({GATEWAY_LAN_ADDRESS, PORTAL_HOST})
PORTAL_LINK_PREFIX = f"http://{GATEWAY_LAN_ADDRESS}/?t="
# The origin echoes /x/... paths as text, so the probe's response is known.
PROBE_URL = "http://origin.lab/x/probe"
PROBE_OPTIONS = ["--probe-url", PROBE_URL, "--expect-body", "/x/probe", "--no-api"]


def run_program(lab: Lab, role: str, program: str, timeout: float = 60) -> Any:
    """Run a Python program in role's namespace and return the JSON it prints."""
    result = lab.run(role, [sys.executable, "-c", program], timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def client_argv(*args: str) -> list[str]:
    """Return the argv of a client command: `capport ...` once it is registered."""
    from capport.cli import main

    module = "capport" if "check" in main.commands else "capport.client"
    return [sys.executable, "-m", module, *args]


def log_in(lab: Lab, role: str) -> None:
    """Click through the real portal with curl, as a person would."""
    results = run_login_flow(CurlFetch(lab, role), ORIGIN_URL, MARKER, PORTAL_HOSTS)
    steps = "; ".join(f"{step.name}: {step.detail}" for step in results)
    assert flow_succeeded(results), steps


def revoke(lab: Lab, role: str) -> None:
    """End role's access if it has any."""
    argv = [sys.executable, "-m", "capport", "revoke", lab.macs[role]]
    argv += ["--socket", str(lab.control_socket)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 or "no authorised device" in result.stderr, (
        result.stderr
    )


@contextmanager
def revoked_afterwards(lab: Lab, role: str) -> Iterator[None]:
    try:
        yield
    finally:
        revoke(lab, role)


def assert_captive(lab: Lab, role: str) -> None:
    status = CurlFetch(lab, role)("GET", ORIGIN_URL).status
    assert status == 511, f"{role} should start captive, got {status}"


# The library in a program

REQUESTS_PROGRAM = f"""
import json
import requests
import urllib3
from urllib3.util.retry import Retry
from capport.client import NetworkAuthenticationRequired
from capport.client.integrations.requests import install
from capport.client.integrations.urllib3 import PortalRetry

def every_5xx(kind):
    return kind(total=3, status_forcelist=list(range(500, 600)), backoff_factor=0,
                raise_on_status=False)

out = {{}}
with install(requests.Session(), max_retries=every_5xx(Retry)) as session:
    try:
        session.get({ORIGIN_URL!r}, timeout=5)
    except NetworkAuthenticationRequired as error:
        out["raised"] = type(error).__name__
        out["portal_url"] = error.portal_url
        out["status"] = error.response.status_code
        out["retries"] = len(error.response.raw.retries.history)
        out["body"] = error.response.text
with urllib3.PoolManager() as pool:
    for name, kind in (("plain_retries", Retry), ("portal_retries", PortalRetry)):
        response = pool.request("GET", {ORIGIN_URL!r}, retries=every_5xx(kind))
        out[name] = len(response.retries.history)
print(json.dumps(out))
"""


def test_requests_program_raises_with_portal_url(lab: Lab) -> None:
    assert_captive(lab, "c1")
    out = run_program(lab, "c1", REQUESTS_PROGRAM)
    assert out["raised"] == "NetworkAuthenticationRequired"
    assert out["status"] == 511
    assert out["portal_url"].startswith(PORTAL_LINK_PREFIX)
    refresh, links, _ = parse_page(out["body"], ORIGIN_URL)
    assert out["portal_url"] == refresh
    assert out["portal_url"] in links


def test_requests_program_sends_511_once(lab: Lab) -> None:
    out = run_program(lab, "c1", REQUESTS_PROGRAM)
    assert out["retries"] == 0
    assert out["portal_retries"] == 0
    # The same retry settings without the integration repeat the 511.
    assert out["plain_retries"] == 3


HTTPX_PROGRAM = f"""
import asyncio, json
import httpx
from capport.client import NetworkAuthenticationRequired
from capport.client.integrations.httpx import AsyncPortalTransport, event_hooks

out = {{}}
with httpx.Client(event_hooks=event_hooks(), timeout=5) as client:
    try:
        client.get({ORIGIN_URL!r})
    except NetworkAuthenticationRequired as error:
        out["sync"] = error.portal_url

async def main():
    async with httpx.AsyncClient(transport=AsyncPortalTransport(), timeout=5) as c:
        try:
            await c.get({ORIGIN_URL!r})
        except NetworkAuthenticationRequired as error:
            out["async"] = error.portal_url

asyncio.run(main())
print(json.dumps(out))
"""


def test_httpx_program_raises_with_portal_url(lab: Lab) -> None:
    out = run_program(lab, "c1", HTTPX_PROGRAM)
    assert out["sync"].startswith(PORTAL_LINK_PREFIX)
    assert out["async"].startswith(PORTAL_LINK_PREFIX)


# capport check and capport login


def test_check_captive_then_online(lab: Lab) -> None:
    assert_captive(lab, "c1")
    captive = lab.run("c1", client_argv("check", *PROBE_OPTIONS), timeout=30)
    assert captive.returncode == 1, captive.stdout + captive.stderr
    assert captive.stdout.startswith(f"captive: log in at {PORTAL_LINK_PREFIX}")

    with revoked_afterwards(lab, "c1"):
        log_in(lab, "c1")
        online = lab.run("c1", client_argv("check", *PROBE_OPTIONS), timeout=30)
    assert online.returncode == 0, online.stdout + online.stderr
    assert online.stdout.startswith("online:")


def test_check_json_in_namespace(lab: Lab) -> None:
    result = lab.run("c2", client_argv("check", *PROBE_OPTIONS, "--json"))
    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert data["state"] == "captive"
    assert data["detected_by"] == "status-511"
    assert data["portal_url"].startswith(PORTAL_LINK_PREFIX)


def test_login_exits_once_logged_in(lab: Lab) -> None:
    assert_captive(lab, "c2")
    argv = client_argv("login", *PROBE_OPTIONS, "--timeout", "60", "--interval", "0.5")
    process = lab.popen(
        "c2", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    with process, revoked_afterwards(lab, "c2"):
        try:
            ready, _, _ = select.select([process.stdout], [], [], 20)
            assert ready, "capport login printed nothing within 20 s"
            first_line = process.stdout.readline()
            assert first_line.startswith(f"Log in at: {PORTAL_LINK_PREFIX}")
            assert process.poll() is None

            log_in(lab, "c2")
            rest, errors = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, errors
    assert "online: the network opened after" in rest


# A third-party detector: captive-portal-detector (module capdet)

CAPDET_PROGRAM = f"""
import hashlib, json, logging
logging.disable(logging.CRITICAL)
import tldextract
from capdet.advanced_network_analyzer import AdvancedNetworkAnalyzer
from capdet.network_probe import NetworkProbe

URL = {PROBE_URL!r}
EXPECTED = {{URL: {hashlib.sha256(b"/x/probe" + bytes([10])).hexdigest()!r}}}
# No suffix list download: tldextract's bundled snapshot only.
OFFLINE_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=())

class LabAnalyzer(AdvancedNetworkAnalyzer):
    PRIMARY = FALLBACK = URL
    _expected = EXPECTED

    def _e2ld(self, host):
        ext = OFFLINE_SUFFIXES(host)
        return f"{{ext.domain}}.{{ext.suffix}}" if ext.suffix else host

class LabProbe(NetworkProbe):
    PRIMARY = FALLBACK = URL
    _expected = EXPECTED

detailed = LabAnalyzer(pinned_hosts={{}})._http_probe_detailed(URL)
basic = LabProbe(pinned_hosts={{}})._single(URL)
print(json.dumps({{"detailed": detailed["status"],
                   "http_status": detailed["http_status"], "basic": basic}}))
"""


@pytest.fixture(scope="module")
def capdet_verdict(lab: Lab) -> dict[str, Any]:
    """capdet's probe functions run against the gateway from a captive client.

    capdet's command line has no option for its probe URLs (they name
    outside hosts), so the program calls its per-URL probe functions with
    a laboratory URL and the origin's known response as the expected one.
    """
    pytest.importorskip("capdet", reason="captive-portal-detector is not installed")
    assert_captive(lab, "c1")
    result: dict[str, Any] = run_program(lab, "c1", CAPDET_PROGRAM, timeout=120)
    return result


def test_capdet_sees_capport_as_portal(capdet_verdict: dict[str, Any]) -> None:
    assert capdet_verdict["http_status"] == 511
    assert capdet_verdict["detailed"] == "CAPTIVE"


def test_capdet_basic_probe_misses_511(capdet_verdict: dict[str, Any]) -> None:
    """capdet's basic probe counts only redirects and 200 pages as portals."""
    assert capdet_verdict["basic"] == "UNKNOWN"
