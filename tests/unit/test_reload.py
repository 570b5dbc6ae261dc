"""Which configuration changes a reload applies."""

import re
from pathlib import Path

from capport.config import parse_config
from capport.reload import LIVE_KEYS, changed_keys, merged, restart_keys

README = Path(__file__).resolve().parents[2] / "README.md"

BASE = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}


def with_changes(**sections: dict) -> dict:
    document = {key: dict(value) for key, value in BASE.items()}
    for section, values in sections.items():
        document.setdefault(section, {}).update(values)
    return document


def test_no_change_lists_nothing() -> None:
    config = parse_config(BASE)
    assert changed_keys(config, parse_config(BASE)) == []


def test_session_duration_is_live() -> None:
    old = parse_config(BASE)
    new = parse_config(with_changes(session={"duration": "2h"}))
    assert changed_keys(old, new) == ["session.duration"]
    assert restart_keys(old, new) == []
    assert merged(old, new).session.duration == 7200


def test_listener_change_needs_restart() -> None:
    old = parse_config(BASE)
    new = parse_config(with_changes(responder={"port": 9000}, log={"level": "debug"}))
    assert restart_keys(old, new) == ["responder.port"]
    applied = merged(old, new)
    assert applied.responder.port == old.responder.port
    assert applied.log.level == "debug"


def test_firewall_ports_are_live() -> None:
    old = parse_config(BASE)
    new = parse_config(with_changes(firewall={"allow_tcp_ports": [22]}))
    assert restart_keys(old, new) == []
    assert merged(old, new).firewall.allow_tcp_ports == (22,)


def test_accounting_interval_needs_restart() -> None:
    old = parse_config(BASE)
    new = parse_config(with_changes(session={"accounting_interval": "10s"}))
    assert restart_keys(old, new) == ["session.accounting_interval"]
    assert merged(old, new).session.accounting_interval == 30


def test_probes_need_restart() -> None:
    old = parse_config(BASE)
    probe = {"host": "probe.example", "path": "/check"}
    new = parse_config({**BASE, "probes": [probe]})
    assert restart_keys(old, new) == ["probes"]


def test_readme_reload_table_lists_live_keys() -> None:
    text = README.read_text()
    start = text.index("| keys | what the reload changes |")
    table = text[start : text.index("\n\n", start)]
    listed = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", table))
    live = {f"{section}.{key}" for section, keys in LIVE_KEYS.items() for key in keys}
    assert listed == live
