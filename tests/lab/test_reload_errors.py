"""A reload of the real daemon that fails is logged at once and changes nothing."""

from __future__ import annotations

import os
import signal
import tomllib
from pathlib import Path

import pytest
from clients import is_online, log_in, log_text
from netns import wait_until

from capport.lab import Lab
from capport.lab.labconfig import render_toml

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

FAILED = "Reload failed; the running configuration is kept"


def _set_terms_file(lab: Lab, path: Path) -> None:
    document = tomllib.loads(lab.config_path.read_text())
    document["portal"]["terms_file"] = str(path)
    lab.config_path.write_text(render_toml(document))


@pytest.mark.lab_config(session_duration=120)
def test_reload_with_latin1_terms_fails(fresh_lab: Lab, tmp_path: Path) -> None:
    log_in(fresh_lab, "c1")
    terms = tmp_path / "terms.txt"
    terms.write_bytes("Caf\u00e9 terms".encode("latin-1"))
    _set_terms_file(fresh_lab, terms)

    os.kill(fresh_lab.processes["gateway"].pid, signal.SIGHUP)

    assert wait_until(lambda: FAILED in log_text(fresh_lab), 5), log_text(fresh_lab)
    text = log_text(fresh_lab)
    assert f"portal.terms_file: {terms} is not UTF-8 text" in text
    assert "Configuration reloaded." not in text
    assert "Task exception was never retrieved" not in text
    assert fresh_lab.gateway_running()
    assert is_online(fresh_lab, "c1")
