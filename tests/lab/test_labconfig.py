"""The generated gateway configuration and its TOML writer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from capport.config import load_config
from capport.errors import ConfigError
from capport.lab.labconfig import gateway_document, merge, render_toml, write_config

STATE_DIR = Path("/run/capport-lab/cptx")


def document(**extra: object) -> dict[str, object]:
    return gateway_document(
        interface="lan0",
        portal_address="192.0.2.1",
        state_dir=STATE_DIR,
        session_duration=60.0,
        extra_config=extra,
    )


def test_render_round_trips_through_tomllib() -> None:
    source = {
        "a": {"text": 'quote " and \\ and \n and \x7f', "n": 3, "x": 1.5},
        "b": {"flag": True, "ports": [22, 80], "c": {"deep": "yes"}},
    }
    assert tomllib.loads(render_toml(source)) == source


def test_render_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="cannot write"):
        render_toml({"a": {"b": object()}})


def test_render_quotes_odd_keys() -> None:
    assert tomllib.loads(render_toml({"t": {"a b": 1}})) == {"t": {"a b": 1}}


def test_merge_replaces_single_keys() -> None:
    merged = merge({"s": {"a": 1, "b": 2}}, {"s": {"b": 3}})
    assert merged == {"s": {"a": 1, "b": 3}}


def test_document_sets_lab_values() -> None:
    generated = document()
    assert generated["gateway"] == {"interface": "lan0"}
    assert generated["responder"] == {"port": 8511}
    assert generated["session"] == {"duration": 60.0}
    assert generated["store"] == {"path": str(STATE_DIR / "capport.db")}
    assert generated["control"] == {"socket": str(STATE_DIR / "control.sock")}


def test_extra_config_overrides_one_key() -> None:
    generated = document(session={"token_lifetime": 30})
    assert generated["session"] == {"duration": 60.0, "token_lifetime": 30}


def test_written_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "capport.toml"
    write_config(document(), path)
    config = load_config(path)
    assert config.session.duration == 60.0
    assert str(config.portal.address) == "192.0.2.1"


def test_invalid_extra_config_rejected_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "capport.toml"
    with pytest.raises(ConfigError, match="session.nonsense"):
        write_config(document(session={"nonsense": 1}), path)
    assert not path.exists()


def test_render_writes_arrays_of_tables() -> None:
    source = {
        "a": {"n": 1},
        "probes": [{"host": "p.example", "path": "/c"}, {"host": "q.example"}],
    }
    assert tomllib.loads(render_toml(source)) == source


def test_tls_document_loads_with_https_portal(tmp_path: Path) -> None:
    path = tmp_path / "capport.toml"
    tls_document = gateway_document(
        interface="lo",
        portal_address="127.0.0.1",
        state_dir=tmp_path,
        session_duration=60.0,
        tls=True,
    )
    write_config(tls_document, path)
    config = load_config(path)
    assert config.portal_url() == "https://portal.lab/"
    assert config.tls.certificate == tmp_path / "tls" / "portal.pem"
