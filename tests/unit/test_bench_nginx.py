"""The nginx reference configuration and its redirect rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from capport.bench.nginx import quote_string, redirect_ruleset, render_config


def test_quote_plain_text() -> None:
    assert quote_string("<p>hi</p>\n") == '"<p>hi</p>\n"'


def test_quote_escapes_quotes_and_backslashes() -> None:
    assert quote_string('a "b" \\ c') == '"a \\"b\\" \\\\ c"'


def test_quote_rejects_variables() -> None:
    with pytest.raises(ValueError, match=r"\$"):
        quote_string("costs $5")


def test_config_returns_511_with_body() -> None:
    config = render_config(Path("/run/x"), "192.0.2.1", 8512, 'say "hi"', 5.0)
    assert 'return 511 "say \\"hi\\"";' in config
    assert "listen 192.0.2.1:8512 backlog=4096;" in config
    assert "worker_processes 1;" in config


def test_config_matches_capport_headers_and_keepalive() -> None:
    config = render_config(Path("/run/x"), "192.0.2.1", 8512, "body", 5.0)
    assert "add_header Cache-Control no-store always;" in config
    assert 'default_type "text/html; charset=utf-8";' in config
    assert "keepalive_timeout 5s;" in config
    assert "access_log off;" in config


def test_config_keeps_files_in_its_directory() -> None:
    config = render_config(Path("/run/x"), "192.0.2.1", 8512, "body", 5.0)
    assert "pid /run/x/nginx.pid;" in config
    assert "client_body_temp_path /run/x/temp;" in config


def test_redirect_rule_mirrors_capport() -> None:
    rules = redirect_ruleset("lan0", 8512)
    assert "priority -101" in rules
    assert (
        'iifname "lan0" tcp dport 80 fib daddr type != local '
        "ether saddr . ip saddr != @unused4 redirect to :8512\n"
    ) in rules
