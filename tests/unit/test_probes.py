"""The probe table, its classification and the responder's probe responses."""

from __future__ import annotations

import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from capport.config import parse_config
from capport.errors import ConfigError
from capport.intercept.actions import Action, classify
from capport.intercept.request import parse_request
from capport.intercept.responses import ResponseBuilder
from capport.probes import (
    APPLE_SUCCESS,
    DEFAULT_PROBES,
    BeforeLogin,
    ProbeEntry,
    ProbeTable,
    merge_probes,
)
from capport.tokens import TokenSigner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from probe_rules import Answer, verdict  # noqa: E402

PORTAL = "https://portal.example/"
CLIENT = IPv4Address("192.0.2.50")
SIGNER = TokenSigner(b"probe-test-secret-probe-test-secret", lifetime=900)
APPLE_AGENT = "CaptiveNetworkSupport-355.200.27 wispr"
TABLE = ProbeTable(DEFAULT_PROBES)

# The probes whose response a system checks. Windows' /redirect has none.
CHECKED_PROBES = [p for p in DEFAULT_PROBES if p.status == 204 or p.body]


def probe_id(probe: ProbeEntry) -> str:
    return f"{probe.system}:{probe.host}{probe.path}"


def respond(
    probe: ProbeEntry | None,
    target: str,
    host: str,
    authorised: bool,
    user_agent: str | None = None,
    method: bytes = b"GET",
) -> tuple[Action, Answer, dict[str, str]]:
    """Classify and build the responder's response, and parse it as a client would."""
    request = parse_request(
        method,
        target.encode(),
        host.encode(),
        CLIENT,
        True,
        destination=lambda: "198.51.100.7",
        user_agent=user_agent.encode() if user_agent else None,
    )
    action = classify(request, authorised, probe)
    raw = ResponseBuilder(PORTAL, SIGNER).build(request, action, probe)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(lines[0].split(" ")[1])
    return action, Answer(status, body, headers.get("location")), headers


def request_for(probe: ProbeEntry) -> dict[str, str | None]:
    return {
        "target": probe.path,
        "host": probe.host,
        "user_agent": APPLE_AGENT if probe.user_agent else None,
    }


# Matching


def test_table_matches_apple_probe_with_its_agent() -> None:
    entry = TABLE.match("captive.apple.com", "/hotspot-detect.html", APPLE_AGENT)
    assert entry is not None
    assert entry.system == "apple"


def test_table_skips_apple_probe_without_its_agent() -> None:
    browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    assert TABLE.match("captive.apple.com", "/hotspot-detect.html", browser) is None
    assert TABLE.match("captive.apple.com", "/hotspot-detect.html", None) is None


def test_table_ignores_query_port_and_case() -> None:
    entry = TABLE.match("ConnectivityCheck.gstatic.com:80", "/generate_204?x=1", None)
    assert entry is not None
    assert entry.status == 204


def test_table_reads_host_of_absolute_target() -> None:
    entry = TABLE.match(
        "other.example", "http://www.msftconnecttest.com/connecttest.txt", None
    )
    assert entry is not None
    assert entry.body == "Microsoft Connect Test"


def test_table_ignores_other_paths_and_hosts() -> None:
    assert TABLE.match("captive.apple.com", "/", APPLE_AGENT) is None
    assert TABLE.match("example.com", "/generate_204", None) is None
    assert TABLE.match(None, "/generate_204", None) is None


def test_agent_dependent_hosts_name_apple_only() -> None:
    assert TABLE.agent_dependent_hosts == frozenset({b"captive.apple.com"})


# Merging the configuration with the defaults


def test_merge_replaces_default_with_same_key() -> None:
    entry = ProbeEntry(
        host="captive.apple.com",
        path="/hotspot-detect.html",
        user_agent="CaptiveNetworkSupport",
        answer_after_login=True,
        content_type="text/html",
        body=APPLE_SUCCESS,
    )
    merged = merge_probes([entry])
    assert entry in merged
    assert len(merged) == len(DEFAULT_PROBES)


def test_merge_removes_disabled_default() -> None:
    entry = ProbeEntry(host="www.google.com", path="/gen_204", enabled=False)
    merged = merge_probes([entry])
    assert len(merged) == len(DEFAULT_PROBES) - 1
    assert ProbeTable(merged).match("www.google.com", "/gen_204", None) is None


def test_merge_adds_new_entry() -> None:
    entry = ProbeEntry(host="probe.example", path="/check", status=204)
    merged = merge_probes([entry])
    assert ProbeTable(merged).match("probe.example", "/check", None) == entry


def test_config_reads_probe_entries() -> None:
    config = parse_config(
        {
            "gateway": {"interface": "lan0"},
            "portal": {"address": "192.0.2.1"},
            "probes": [
                {"host": "Probe.Example", "path": "/c", "before_login": "captive"}
            ],
        }
    )
    assert config.probes[0].host == "probe.example"
    assert config.probes[0].before_login is BeforeLogin.CAPTIVE


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"host": "a.example", "path": "/c", "before_login": "511"}, "before_login"),
        ({"host": "a.example", "path": "no-slash"}, "path"),
        ({"host": "a.example/x", "path": "/c"}, "host"),
        ({"host": "a.example", "path": "/c", "status": 302}, "status"),
        ({"host": "a.example", "path": "/c", "colour": "red"}, "colour"),
    ],
)
def test_config_rejects_invalid_probe(entry: dict[str, object], key: str) -> None:
    document = {
        "gateway": {"interface": "lan0"},
        "portal": {"address": "192.0.2.1"},
        "probes": [entry],
    }
    with pytest.raises(ConfigError, match=rf"probes\.0\.{key}"):
        parse_config(document)


# Classification


def test_ordinary_request_still_gets_511() -> None:
    action, answer, _ = respond(None, "/news", "example.com", authorised=False)
    assert action is Action.CAPTIVE
    assert answer.status == 511


def test_captive_probe_entry_gets_511() -> None:
    entry = ProbeEntry(host="probe.example", path="/c", before_login="captive")
    action, answer, _ = respond(entry, "/c", "probe.example", authorised=False)
    assert action is Action.CAPTIVE
    assert answer.status == 511


def test_probe_after_login_returns_to_real_host() -> None:
    probe = TABLE.match("www.gstatic.com", "/generate_204", None)
    action, answer, headers = respond(
        probe, "/generate_204", "www.gstatic.com", authorised=True
    )
    assert action is Action.RETURN
    assert answer.location == "http://www.gstatic.com/generate_204"
    assert headers["connection"] == "close"


# Each system's verdict on the gateway's answers


@pytest.mark.parametrize("probe", CHECKED_PROBES, ids=probe_id)
def test_probe_before_login_reads_as_portal(probe: ProbeEntry) -> None:
    action, answer, _ = respond(probe, authorised=False, **request_for(probe))  # type: ignore[arg-type]
    assert action is Action.PROBE_REDIRECT
    assert verdict(probe.system, answer, probe.success_body) == "portal"


@pytest.mark.parametrize("probe", DEFAULT_PROBES, ids=probe_id)
def test_probe_before_login_redirects_to_portal(probe: ProbeEntry) -> None:
    _, answer, headers = respond(probe, authorised=False, **request_for(probe))  # type: ignore[arg-type]
    assert answer.status == 302
    assert answer.location == PORTAL
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize("probe", CHECKED_PROBES, ids=probe_id)
def test_probe_answered_after_login_reads_as_online(probe: ProbeEntry) -> None:
    answering = probe.model_copy(update={"answer_after_login": True})
    action, answer, _ = respond(answering, authorised=True, **request_for(probe))  # type: ignore[arg-type]
    assert action is Action.PROBE_SUCCESS
    assert verdict(probe.system, answer, probe.success_body) == "online"


@pytest.mark.parametrize("system", ["android", "chrome"])
def test_511_on_generate_204_is_not_online(system: str) -> None:
    answer = Answer(511, b"<html>login</html>")
    assert verdict(system, answer, b"") != "online"


def test_android_reads_511_as_offline() -> None:
    # The reason probes get a redirect: no sign-in window for a 511.
    assert verdict("android", Answer(511, b"<html>login</html>"), b"") == "offline"


def test_apple_probe_before_login_is_not_success_page() -> None:
    probe = TABLE.match("captive.apple.com", "/hotspot-detect.html", APPLE_AGENT)
    _, answer, _ = respond(
        probe,
        "/hotspot-detect.html",
        "captive.apple.com",
        authorised=False,
        user_agent=APPLE_AGENT,
    )
    assert answer.body != APPLE_SUCCESS.encode()
    assert b"Success" not in answer.body


def test_apple_success_page_after_login() -> None:
    probe = TABLE.match("captive.apple.com", "/hotspot-detect.html", APPLE_AGENT)
    assert probe is not None
    answering = probe.model_copy(update={"answer_after_login": True})
    _, answer, headers = respond(
        answering,
        "/hotspot-detect.html",
        "captive.apple.com",
        authorised=True,
        user_agent=APPLE_AGENT,
    )
    assert answer.status == 200
    assert answer.body == (
        b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
    )
    assert headers["content-type"] == "text/html"
    assert headers["content-length"] == str(len(answer.body))


def test_204_answer_has_no_body_or_length() -> None:
    probe = TABLE.match("connectivitycheck.gstatic.com", "/generate_204", None)
    assert probe is not None
    answering = probe.model_copy(update={"answer_after_login": True})
    _, answer, headers = respond(
        answering, "/generate_204", "connectivitycheck.gstatic.com", authorised=True
    )
    assert answer.status == 204
    assert answer.body == b""
    assert "content-length" not in headers


def test_head_probe_answer_has_no_body() -> None:
    probe = TABLE.match("www.msftncsi.com", "/ncsi.txt", None)
    assert probe is not None
    answering = probe.model_copy(update={"answer_after_login": True})
    _, answer, headers = respond(
        answering, "/ncsi.txt", "www.msftncsi.com", authorised=True, method=b"HEAD"
    )
    assert answer.body == b""
    assert headers["content-length"] == str(len(b"Microsoft NCSI"))


def test_windows_redirect_probe_leads_to_portal() -> None:
    probe = TABLE.match("www.msftconnecttest.com", "/redirect", None)
    _, answer, _ = respond(
        probe, "/redirect", "www.msftconnecttest.com", authorised=False
    )
    assert answer.status == 302
    assert answer.location == PORTAL


def test_redirect_to_unicode_portal_url_is_ascii() -> None:
    probe = TABLE.match("www.gstatic.com", "/generate_204", None)
    request = parse_request(
        b"GET", b"/generate_204", b"www.gstatic.com", CLIENT, True, lambda: "x"
    )
    builder = ResponseBuilder("http://café.example/", SIGNER)
    raw = builder.build(request, Action.PROBE_REDIRECT, probe)
    assert b"Location: http://caf%C3%A9.example/\r\n" in raw
