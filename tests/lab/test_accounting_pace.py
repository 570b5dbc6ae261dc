"""The accounting loop of a running gateway keeps its configured interval.

A laboratory gateway has a handful of sessions at most, so each pass costs
milliseconds of CPU and the pacer has no reason to stretch the interval.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from clients import capport
from netns import wait_until

from capport.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

ADMIN_URL = "http://127.0.0.1:8512"
INTERVAL_SECONDS = 1
WINDOW_SECONDS = 6.0


@pytest.fixture
def token(fresh_lab: Lab) -> Iterator[str]:
    """A bearer token of the laboratory's gateway, revoked afterwards."""
    name = f"pace-{os.getpid()}"
    result = capport("tokens", "create", name, "--store", str(fresh_lab.store_path))
    assert result.returncode == 0, result.stderr
    yield result.stdout.strip()
    capport("tokens", "revoke", name, "--store", str(fresh_lab.store_path))


def admin_get(lab: Lab, token: str, path: str) -> str:
    """Return the body of a GET to the admin listener in the gateway's namespace."""
    argv = [
        "curl", "-sS", "--fail", "--max-time", "10",
        "--header", f"Authorization: Bearer {token}", ADMIN_URL + path,
    ]  # fmt: skip
    return lab.run("gw", argv, check=True).stdout


def accounting_state(lab: Lab, token: str) -> dict[str, float]:
    state = json.loads(admin_get(lab, token, "/api/v1/status"))["accounting"]
    assert isinstance(state, dict)
    return state


def wait_for_first_pass(lab: Lab, token: str) -> bool:
    return wait_until(
        lambda: accounting_state(lab, token)["passes"] > 0, timeout=10, interval=0.5
    )


@pytest.mark.lab_config(
    extra_config={"session": {"accounting_interval": INTERVAL_SECONDS}}
)
def test_cheap_passes_keep_configured_interval(fresh_lab: Lab, token: str) -> None:
    assert wait_for_first_pass(fresh_lab, token)
    first = accounting_state(fresh_lab, token)
    started = time.monotonic()
    time.sleep(WINDOW_SECONDS)
    last = accounting_state(fresh_lab, token)
    elapsed = time.monotonic() - started

    assert last["configured_interval_seconds"] == INTERVAL_SECONDS
    assert last["interval_seconds"] == INTERVAL_SECONDS
    assert isinstance(last["last_pass_cpu_seconds"], float)
    passes = last["passes"] - first["passes"]
    # One pass per interval plus its own run time, so slightly fewer than
    # elapsed / interval; the lower bound leaves room for a busy machine.
    assert passes >= elapsed / INTERVAL_SECONDS / 2
    assert passes <= elapsed / INTERVAL_SECONDS + 1


@pytest.mark.lab_config(
    extra_config={"session": {"accounting_interval": INTERVAL_SECONDS}}
)
def test_metrics_report_accounting_interval(fresh_lab: Lab, token: str) -> None:
    assert wait_for_first_pass(fresh_lab, token)
    text = admin_get(fresh_lab, token, "/metrics")
    assert f"capport_accounting_interval_seconds {INTERVAL_SECONDS:.1f}" in text
    assert "capport_accounting_pass_cpu_seconds " in text
