"""Hostile and broken input to the whole gateway: requests, tokens, configuration.

The request tests send from captive clients of the shared laboratory and
leave them captive. The configuration tests run `capport run` in a
namespace of their own, which holds nothing but a LAN interface.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import (
    PORTAL_URL,
    clients_json,
    curl,
    exchange,
    http_get,
    is_captive,
    log_in,
    log_text,
    open_splash,
    post_form,
    revoke_quietly,
)
from netns import Namespace

from capport.lab import Lab
from capport.lab.flow import parse_page
from capport.lab.labconfig import render_toml
from capport.lab.topology import GATEWAY_LAN_ADDRESS, ORIGIN_HOST, ORIGIN_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

SCRIPT = '"><script>alert(1)</script>'
SVG = "<svg onload=alert(1)>"
REJECTED_LINK_NOTICE = "The sign-in link you followed has expired or is not valid"


def _assert_no_markup(body: str) -> None:
    assert "<script>" not in body
    assert "<svg" not in body


# Markup in Host and path


def test_host_markup_escaped_in_511(lab: Lab) -> None:
    reply = exchange(lab, "c1", http_get(SVG + SCRIPT, "/"))
    body = reply.body.decode()
    assert reply.status == 511
    _assert_no_markup(body)
    assert "&lt;svg onload=alert(1)&gt;&quot;&gt;&lt;script&gt;" in body


def test_path_markup_escaped_in_511(lab: Lab) -> None:
    reply = exchange(lab, "c1", http_get(ORIGIN_HOST, "/" + SCRIPT))
    body = reply.body.decode()
    assert reply.status == 511
    _assert_no_markup(body)
    # The responder percent-encodes what RFC 3986 does not allow in a URL.
    assert "http://origin.lab/%22%3E%3Cscript%3Ealert(1)%3C/script%3E" in body


def test_markup_url_absent_from_splash_page(lab: Lab) -> None:
    splash = open_splash(lab, "c1", f"http://{ORIGIN_HOST}/{SCRIPT}")
    _assert_no_markup(splash.response.body)
    assert "go on to origin.lab." in splash.response.body


def test_markup_url_returned_percent_encoded(lab: Lab) -> None:
    splash = open_splash(lab, "c1", f"http://{ORIGIN_HOST}/{SCRIPT}")
    try:
        accepted = post_form(lab, "c1", splash.form)
        assert accepted.status == 303
        assert accepted.header("location") == (
            "http://origin.lab/%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
        )
        # Signed in, the same link shows the status page with a link back.
        status = curl(lab, "c1", splash.portal_url)
        assert status.status == 200
        _assert_no_markup(status.body)
        assert "Continue to origin.lab" in status.body
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_host_markup_absent_from_portal_page(lab: Lab) -> None:
    response = curl(lab, "c1", PORTAL_URL, headers=[f"Host: {SVG}{SCRIPT}"])
    assert response.status == 200
    _assert_no_markup(response.body)


def test_path_markup_absent_from_portal_404(lab: Lab) -> None:
    response = curl(lab, "c1", PORTAL_URL + "%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert response.status == 404
    _assert_no_markup(response.body)
    assert "There is no page at this address." in response.body


def test_malformed_request_gets_short_error_from_responder(lab: Lab) -> None:
    reply = exchange(lab, "c1", b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")
    assert reply.status == 400
    assert reply.body == b"400 Bad Request\n"
    assert reply.closed


def test_malformed_request_gets_short_error_from_portal(lab: Lab) -> None:
    log_start = len(log_text(lab))
    reply = exchange(
        lab, "c1", b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", GATEWAY_LAN_ADDRESS
    )
    assert reply.status == 400
    assert reply.body == b"Invalid HTTP request received."
    assert reply.closed
    assert "Traceback" not in log_text(lab)[log_start:]


# Bad return tokens


BAD_TOKENS = {
    "garbage": "not-a-token",
    "forged": "Imh0dHA6Ly9ldmlsLmV4YW1wbGUvIg.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "empty": "",
    "oversized": "A" * 20000,
}


def _other_device_served(lab: Lab) -> None:
    """Check that c2 still gets a 511 and can log in; leave it captive again."""
    assert is_captive(lab, "c2")
    try:
        log_in(lab, "c2")
    finally:
        revoke_quietly(lab, lab.macs["c2"])


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_in_link_gets_400(lab: Lab, token: str) -> None:
    url = f"{PORTAL_URL}?t={token}"
    response = curl(lab, "c1", url)
    _, _, forms = parse_page(response.body, url)
    assert response.status == 400
    assert REJECTED_LINK_NOTICE in response.body
    assert "t" not in forms[0].fields
    _other_device_served(lab)


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_on_accept_gets_400(lab: Lab, token: str) -> None:
    splash = open_splash(lab, "c1")
    try:
        response = post_form(lab, "c1", splash.form, t=token)
        assert response.status == 400
        assert REJECTED_LINK_NOTICE in response.body
        assert clients_json(lab) == []
        assert is_captive(lab, "c1")
    finally:
        revoke_quietly(lab, lab.macs["c1"])
    _other_device_served(lab)


TOKEN_LIFETIME = 2


@pytest.mark.lab_config(extra_config={"session": {"token_lifetime": TOKEN_LIFETIME}})
def test_expired_token_gets_400(fresh_lab: Lab) -> None:
    splash = open_splash(fresh_lab, "c1")
    # itsdangerous counts whole seconds and accepts an age equal to the
    # lifetime, so the token is expired once lifetime + 1 s have passed.
    time.sleep(TOKEN_LIFETIME + 1.2)

    link = curl(fresh_lab, "c1", splash.portal_url)
    assert link.status == 400
    assert REJECTED_LINK_NOTICE in link.body

    accepted = post_form(fresh_lab, "c1", splash.form)
    assert accepted.status == 400
    assert "location" not in {name.lower() for name, _ in accepted.headers}
    assert clients_json(fresh_lab) == []
    assert is_captive(fresh_lab, "c1")

    _other_device_served(fresh_lab)


# Oversized and malformed requests through the redirect


def test_large_header_block_and_target_get_511(lab: Lab) -> None:
    fill = "".join(f"X-Fill-{i}: {'a' * 1000}\r\n" for i in range(8))
    target = "/" + "b" * 2047
    reply = exchange(lab, "c1", http_get(ORIGIN_HOST, target, fill))
    assert reply.status == 511
    # The page quotes only the first 2000 characters of the URL, but its
    # link carries all of it through the portal.
    refresh, _, _ = parse_page(reply.body.decode(), ORIGIN_URL)
    assert refresh is not None
    splash = curl(lab, "c1", refresh)
    _, _, forms = parse_page(splash.body, refresh)
    assert splash.status == 200
    try:
        accepted = post_form(lab, "c1", forms[0])
        assert accepted.header("location") == f"http://origin.lab{target}"
    finally:
        revoke_quietly(lab, lab.macs["c1"])


def test_64k_header_gets_431_and_close(lab: Lab) -> None:
    big_header = f"X-Big: {'a' * 65536}\r\n"
    reply = exchange(lab, "c1", http_get(ORIGIN_HOST, "/", big_header))
    assert reply.status == 431
    assert reply.body == b"431 Request Header Fields Too Large\n"
    assert reply.closed


def test_garbage_bytes_get_400_and_close(lab: Lab) -> None:
    reply = exchange(lab, "c1", bytes(range(256)) * 4)
    assert reply.status == 400
    assert reply.body == b"400 Bad Request\n"
    assert reply.closed


def test_responder_serves_after_bad_requests(lab: Lab) -> None:
    huge = http_get(ORIGIN_HOST, "/", f"X-Big: {'a' * 65536}\r\n")
    for request in (huge, bytes(range(256)) * 4, huge):
        exchange(lab, "c1", request)
    for role in ("c1", "c2"):
        assert curl(lab, role, ORIGIN_URL).status == 511


# Bad configuration


GOOD_CONFIG: dict[str, Any] = {
    "gateway": {"interface": "lan0"},
    "portal": {"address": "192.0.2.1"},
}


@pytest.fixture(scope="module")
def bare_namespace() -> Iterator[Namespace]:
    """A namespace with a LAN interface lan0 at 192.0.2.1 and one nft table.

    The table gives the ruleset something a careless start would change.
    """
    namespace = Namespace.create("cfg")
    try:
        namespace.ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
        namespace.ip("address", "add", "192.0.2.1/24", "dev", "lan0")
        namespace.ip("link", "set", "lan0", "up")
        namespace.run(["nft", "add table inet unrelated"])
        namespace.sysctl("net.ipv4.ip_forward", "1")
        yield namespace
    finally:
        namespace.delete()


def _write_config(directory: Path, document: dict[str, Any]) -> Path:
    config = {
        **document,
        "store": {"path": str(directory / "capport.db")},
        "control": {"socket": str(directory / "control.sock")},
    }
    path = directory / "capport.toml"
    path.write_text(render_toml(config))
    return path


def _run_gateway(
    namespace: Namespace, config: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "capport", "run", "--config", str(config)]
    return subprocess.run(
        ["ip", "netns", "exec", namespace.name, *argv, *options],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_good_config_passes_check(bare_namespace: Namespace, tmp_path: Path) -> None:
    result = _run_gateway(
        bare_namespace, _write_config(tmp_path, GOOD_CONFIG), "--check"
    )
    assert result.returncode == 0, result.stderr
    assert "configuration and host are valid" in result.stdout


def test_check_reports_forwarding_off(
    bare_namespace: Namespace, tmp_path: Path
) -> None:
    bare_namespace.sysctl("net.ipv4.ip_forward", "0")
    try:
        result = _run_gateway(
            bare_namespace, _write_config(tmp_path, GOOD_CONFIG), "--check"
        )
    finally:
        bare_namespace.sysctl("net.ipv4.ip_forward", "1")
    assert result.returncode != 0
    assert "IPv4 forwarding is off" in result.stderr


def test_check_reports_port_in_use(bare_namespace: Namespace, tmp_path: Path) -> None:
    listener = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            bare_namespace.name,
            sys.executable,
            "-c",
            "import socket,time; s=socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('192.0.2.1', 8511)); s.listen(); print('up', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "up"
        config = _write_config(tmp_path, GOOD_CONFIG)
        checked = _run_gateway(bare_namespace, config, "--check")
        started = _run_gateway(bare_namespace, config)
        ruleset = bare_namespace.run(["nft", "list ruleset"])
    finally:
        listener.kill()
        listener.communicate()
    assert checked.returncode != 0
    assert "responder.port: 192.0.2.1:8511 is already in use" in checked.stderr
    assert started.returncode != 0
    assert "responder.port" in started.stderr
    assert "Traceback" not in started.stderr
    assert "table inet capport" not in ruleset


BAD_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-key": (
        {**GOOD_CONFIG, "portal": {"address": "192.0.2.1", "colour": "blue"}},
        "portal.colour: unknown key",
    ),
    "wrong-type": (
        {**GOOD_CONFIG, "responder": {"port": "8511"}},
        "responder.port: Input should be a valid integer (got '8511')",
    ),
    "missing-interface-key": (
        {**GOOD_CONFIG, "gateway": {}},
        "gateway.interface: required key is missing",
    ),
    "no-such-interface": (
        {**GOOD_CONFIG, "gateway": {"interface": "nosuch0"}},
        "gateway.interface: no interface named 'nosuch0'",
    ),
    "address-not-on-interface": (
        {**GOOD_CONFIG, "portal": {"address": "192.0.2.99"}},
        "portal.address: 192.0.2.99 is not assigned to lan0",
    ),
}


@pytest.mark.parametrize(
    "document, message", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys()
)
def test_bad_config_rejected_before_changes(
    bare_namespace: Namespace,
    tmp_path: Path,
    document: dict[str, Any],
    message: str,
) -> None:
    ruleset_before = bare_namespace.run(["nft", "list", "ruleset"])
    result = _run_gateway(bare_namespace, _write_config(tmp_path, document))
    assert result.returncode != 0
    assert message in result.stderr
    assert bare_namespace.run(["nft", "list", "ruleset"]) == ruleset_before
    assert not (tmp_path / "capport.db").exists()
    assert not (tmp_path / "control.sock").exists()
