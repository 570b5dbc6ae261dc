"""Which configuration changes a reload applies."""

from capport.config import parse_config
from capport.reload import changed_keys, merged, restart_keys

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
