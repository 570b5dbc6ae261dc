"""What the running gateway writes to its log for hostile or broken input.

The requests come from a captive client of the shared laboratory and go to
the portal, whose access log is the gateway's stderr. The reload test
breaks the configuration file of a laboratory of its own.
"""

from __future__ import annotations

import os
import re
import signal
import tomllib

import pytest
from clients import curl, exchange, log_text, wait_for_log
from netns import wait_until

from capport.lab import Lab
from capport.lab.labconfig import render_toml
from capport.lab.topology import GATEWAY_LAN_ADDRESS

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

PORTAL = f"http://{GATEWAY_LAN_ADDRESS}"
# A record of the text format starts with the date and time.
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def test_newline_in_path_cannot_forge_a_line(lab: Lab) -> None:
    marker = "forged-by-path"
    path = f"/%0A2026-12-04%2018:00:00,000%20ERROR%20capport.daemon:%20{marker}"
    curl(lab, "c1", f"{PORTAL}{path}")
    assert wait_for_log(lab, marker)
    [line] = [line for line in log_text(lab).splitlines() if marker in line]
    assert "capport.access: 192.0.2.11 GET /\\n2026-12-04 18:00:00,000" in line


def test_control_characters_in_path_escaped(lab: Lab) -> None:
    curl(lab, "c1", f"{PORTAL}/%0D%0Aforged-cr%1B%5B31mb%E2%80%A8c")
    assert wait_for_log(lab, "forged-cr")
    [line] = [line for line in log_text(lab).splitlines() if "forged-cr" in line]
    assert RECORD_START.match(line)
    assert "GET /\\r\\nforged-cr\\x1b[31mb\\u2028c 404 " in line


def test_malformed_request_line_in_access_log(lab: Lab) -> None:
    reply = exchange(lab, "c2", b"GET /\x01 HTTP/1.1\r\n\r\n", GATEWAY_LAN_ADDRESS)
    assert reply.status == 400
    assert wait_for_log(lab, "capport.access: 192.0.2.12 - - 400 ")


def test_each_listener_named_once_at_start(lab: Lab) -> None:
    text = log_text(lab)
    assert "Started server process" not in text
    assert text.count(f"Serving the portal on {PORTAL}:80") == 1


def _reload_failures(lab: Lab) -> list[str]:
    return [line for line in log_text(lab).splitlines() if "Reload failed" in line]


def _wait_for_failures(lab: Lab, count: int) -> bool:
    return wait_until(lambda: len(_reload_failures(lab)) >= count, 5)


def _with(valid: str, table: str, key: str, value: object) -> str:
    document = tomllib.loads(valid)
    document.setdefault(table, {})[key] = value
    return render_toml(document)


def test_each_failed_reload_logged(fresh_lab: Lab) -> None:
    valid = fresh_lab.config_path.read_text()
    broken = [
        _with(valid, "responder", "port", "x"),
        _with(valid, "responder", "port", "x"),
        _with(valid, "session", "duration", "abc"),
        valid + "\nbad = [\n",
    ]
    try:
        for number, text in enumerate(broken, start=1):
            fresh_lab.config_path.write_text(text)
            os.kill(fresh_lab.processes["gateway"].pid, signal.SIGHUP)
            assert _wait_for_failures(fresh_lab, number), log_text(fresh_lab)
    finally:
        fresh_lab.config_path.write_text(valid)
    failures = _reload_failures(fresh_lab)
    assert len(failures) == 4
    assert "responder.port" in failures[0]
    assert failures[1].split(" ERROR ")[1] == failures[0].split(" ERROR ")[1]
    assert "session.duration" in failures[2]
    assert "responder.port" not in failures[3]
