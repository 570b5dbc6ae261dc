"""The Captive Portal API over HTTPS and the OS probes, in a TLS laboratory.

One laboratory with `tls=True` serves every test here: client c1 stays
captive and c2 logs in once, so each test reads one state. Clients trust the
laboratory's CA through `curl --cacert`. Probe hosts resolve to the origin
(the "real host"), except where a test sends a probe straight to the
gateway with `curl --resolve`, as a DNS record pointing at it would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from clients import capport

from capport.lab import Lab, down, up
from capport.lab.demo import parse_curl_output
from capport.lab.flow import Response
from capport.lab.topology import GATEWAY_LAN_ADDRESS
from capport.probes import APPLE_SUCCESS, DEFAULT_PROBES, ProbeEntry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from probe_rules import Answer, verdict  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

PORTAL = "https://portal.lab/"
API = "https://portal.lab/api/captive"
VENUE = "http://origin.lab/x/venue"
CAPTIVE_JSON = "application/captive+json"
APPLE_AGENT = "CaptiveNetworkSupport-355.200.27 wispr"
APPLE_PROBE = "http://captive.apple.com/hotspot-detect.html"
ORIGIN_SERVER = "capport-lab-origin"

# The gateway sends Apple's expected page itself after login, when it gets the probe.
APPLE_ANSWERED = {
    "host": "captive.apple.com",
    "path": "/hotspot-detect.html",
    "user_agent": "CaptiveNetworkSupport",
    "answer_after_login": True,
    "content_type": "text/html",
    "body": APPLE_SUCCESS,
}

CHECKED_PROBES = [p for p in DEFAULT_PROBES if p.status == 204 or p.body]


def curl(lab: Lab, role: str, url: str, *options: str) -> Response:
    argv = ["curl", "-sS", "--include", "--max-time", "5", "--cacert"]
    argv += [str(lab.ca_path), *options, url]
    result = subprocess.run(
        lab.exec_argv(role, argv), capture_output=True, timeout=15, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return parse_curl_output(result.stdout.decode("utf-8", errors="replace"))


def api(lab: Lab, role: str, accept: str = CAPTIVE_JSON) -> Response:
    return curl(lab, role, API, "--header", f"Accept: {accept}")


def api_json(lab: Lab, role: str) -> dict[str, object]:
    response = api(lab, role)
    assert response.status == 200, response.body
    document = json.loads(response.body)
    assert isinstance(document, dict)
    return document


def send_probe(
    lab: Lab, role: str, probe: ProbeEntry, options: Sequence[str] = ()
) -> Response:
    agent = ["--user-agent", APPLE_AGENT] if probe.user_agent else []
    return curl(lab, role, f"http://{probe.host}{probe.path}", *agent, *options)


def as_answer(response: Response) -> Answer:
    body = response.body.encode("utf-8")
    return Answer(response.status, body, response.header("location"))


def log_in_over_https(lab: Lab, role: str) -> None:
    splash = curl(lab, role, PORTAL)
    match = re.search(r'name="csrf" value="([^"]+)"', splash.body)
    assert match is not None, splash.body[:300]
    accepted = curl(lab, role, PORTAL + "accept", "--data-raw", f"csrf={match[1]}")
    assert accepted.status == 303, accepted.body[:300]


@pytest.fixture(scope="module")
def tls_lab(new_prefix: Callable[[str], str]) -> Iterator[Lab]:
    built = up(
        new_prefix("t"),
        session_duration=3600.0,
        extra_config={"probes": [APPLE_ANSWERED]},
        tls=True,
    )
    try:
        log_in_over_https(built, "c2")
        yield built
    finally:
        down(built.prefix)


# The Captive Portal API


def test_api_before_login_is_captive(tls_lab: Lab) -> None:
    response = api(tls_lab, "c1")
    assert response.status == 200
    assert response.header("content-type") == CAPTIVE_JSON
    document = api_json(tls_lab, "c1")
    assert document["captive"] is True
    assert document["user-portal-url"] == PORTAL
    assert document["venue-info-url"] == VENUE


def test_api_after_login_is_not_captive(tls_lab: Lab) -> None:
    response = api(tls_lab, "c2")
    assert response.header("content-type") == CAPTIVE_JSON
    document = api_json(tls_lab, "c2")
    assert document["captive"] is False
    assert document["user-portal-url"] == PORTAL
    assert document["venue-info-url"] == VENUE


def _change_mac_list(lab: Lab, command: str, role: str) -> None:
    result = capport(command, lab.macs[role], "--socket", str(lab.control_socket))
    assert result.returncode == 0, result.stderr


def test_trusted_mac_is_told_online(tls_lab: Lab) -> None:
    _change_mac_list(tls_lab, "trust", "c1")
    try:
        document = api_json(tls_lab, "c1")
        splash = curl(tls_lab, "c1", PORTAL)
    finally:
        _change_mac_list(tls_lab, "untrust", "c1")
    assert document["captive"] is False
    assert "seconds-remaining" not in document
    assert splash.status == 200
    assert "This device does not need to sign in." in splash.body
    assert 'action="/accept"' not in splash.body
    assert api_json(tls_lab, "c1")["captive"] is True


def test_api_seconds_remaining_counts_down(tls_lab: Lab) -> None:
    first = api_json(tls_lab, "c2")["seconds-remaining"]
    time.sleep(2.1)
    second = api_json(tls_lab, "c2")["seconds-remaining"]
    assert isinstance(first, int)
    assert isinstance(second, int)
    assert 0 < second < first <= 3600


QUOTA_BYTES = 1_000_000


@pytest.mark.lab_config(
    tls=True,
    extra_config={"session": {"quota_down": QUOTA_BYTES, "accounting_interval": 1}},
)
def test_api_bytes_remaining_counts_down(fresh_lab: Lab) -> None:
    log_in_over_https(fresh_lab, "c1")
    downloaded = curl(fresh_lab, "c1", "http://origin.lab/bytes/300000?delay=0")
    assert downloaded.status == 200
    time.sleep(2.5)  # at least one accounting pass
    remaining = api_json(fresh_lab, "c1")["bytes-remaining"]
    assert isinstance(remaining, int)
    # The quota counts IP and TCP headers as well as the 300,000 bytes.
    assert QUOTA_BYTES - 330_000 <= remaining <= QUOTA_BYTES - 300_000


SHORT_SESSION = 6.0


@pytest.mark.lab_config(tls=True, session_duration=SHORT_SESSION)
def test_session_end_turns_api_captive(fresh_lab: Lab) -> None:
    log_in_over_https(fresh_lab, "c1")
    first = api_json(fresh_lab, "c1")
    time.sleep(1.5)
    second = api_json(fresh_lab, "c1")
    time.sleep(SHORT_SESSION + 1.5)
    after = api_json(fresh_lab, "c1")
    origin = curl(fresh_lab, "c1", "http://origin.lab/")
    assert first["captive"] is False
    assert isinstance(first["seconds-remaining"], int)
    assert isinstance(second["seconds-remaining"], int)
    assert 0 < second["seconds-remaining"] < first["seconds-remaining"]
    assert after["captive"] is True
    assert "seconds-remaining" not in after
    assert after["user-portal-url"] == PORTAL
    assert after["venue-info-url"] == VENUE
    assert origin.status == 511


def test_api_rejects_html_accept(tls_lab: Lab) -> None:
    assert api(tls_lab, "c1", accept="text/html").status == 406


def test_api_is_not_served_over_http(tls_lab: Lab) -> None:
    response = curl(tls_lab, "c1", "http://portal.lab/api/captive")
    assert response.status == 404


def test_511_links_to_https_portal(tls_lab: Lab) -> None:
    response = curl(tls_lab, "c1", "http://origin.lab/")
    assert response.status == 511
    assert 'href="https://portal.lab/?t=' in response.body


# Probes: intercepted before login, forwarded to the real host after it


@pytest.mark.parametrize("probe", CHECKED_PROBES, ids=lambda p: p.host + p.path)
def test_probe_before_login_reads_as_portal(tls_lab: Lab, probe: ProbeEntry) -> None:
    response = send_probe(tls_lab, "c1", probe)
    assert response.status == 302
    assert response.header("location") == PORTAL
    assert verdict(probe.system, as_answer(response), probe.success_body) == "portal"


@pytest.mark.parametrize("probe", CHECKED_PROBES, ids=lambda p: p.host + p.path)
def test_probe_after_login_reads_as_online(tls_lab: Lab, probe: ProbeEntry) -> None:
    response = send_probe(tls_lab, "c2", probe)
    assert ORIGIN_SERVER in (response.header("server") or "")
    assert verdict(probe.system, as_answer(response), probe.success_body) == "online"


def test_apple_probe_before_login_is_not_success(tls_lab: Lab) -> None:
    response = curl(tls_lab, "c1", APPLE_PROBE, "--user-agent", APPLE_AGENT)
    assert response.status == 302
    assert response.body != APPLE_SUCCESS


def test_apple_probe_after_login_reaches_real_host(tls_lab: Lab) -> None:
    response = curl(tls_lab, "c2", APPLE_PROBE, "--user-agent", APPLE_AGENT)
    assert response.status == 200
    assert response.body == APPLE_SUCCESS
    assert ORIGIN_SERVER in (response.header("server") or "")


# Probes whose name points at the gateway, so the gateway responds itself


def to_gateway(lab: Lab, role: str) -> Response:
    resolve = f"captive.apple.com:80:{GATEWAY_LAN_ADDRESS}"
    return curl(
        lab, role, APPLE_PROBE, "--resolve", resolve, "--user-agent", APPLE_AGENT
    )


def test_gateway_redirects_apple_probe_before_login(tls_lab: Lab) -> None:
    response = to_gateway(tls_lab, "c1")
    assert response.status == 302
    assert response.header("location") == PORTAL
    assert "Success" not in response.body


def test_gateway_answers_apple_probe_after_login(tls_lab: Lab) -> None:
    response = to_gateway(tls_lab, "c2")
    assert response.status == 200
    assert response.body == APPLE_SUCCESS
    assert response.header("server") is None
