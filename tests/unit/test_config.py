"""Validation of the TOML configuration file."""

from pathlib import Path

import pytest

from capport.config import load_config, parse_config, parse_duration
from capport.errors import ConfigError

MINIMAL = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.portal.port == 80
    assert config.responder.port == 8511
    assert config.session.duration == 3600
    assert config.portal.base_url() == "http://192.0.2.1/"


def test_example_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "capport.toml"
    config = load_config(example)
    assert config.gateway.interface


@pytest.mark.parametrize("missing", ["gateway", "portal"])
def test_missing_section_named(missing: str) -> None:
    document = {key: value for key, value in MINIMAL.items() if key != missing}
    with pytest.raises(ConfigError, match=rf"{missing}: required key is missing"):
        parse_config(document)


def test_missing_interface_named() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.interface: required"):
        parse_config({"gateway": {}, "portal": {"address": "192.0.2.1"}})


def test_unknown_key_named() -> None:
    document = {**MINIMAL, "responder": {"prot": 8511}}
    with pytest.raises(ConfigError, match=r"responder\.prot: unknown key"):
        parse_config(document)


def test_unknown_section_named() -> None:
    with pytest.raises(ConfigError, match=r"portl: unknown key"):
        parse_config({**MINIMAL, "portl": {}})


def test_wrong_type_named() -> None:
    document = {**MINIMAL, "responder": {"port": "8511"}}
    with pytest.raises(ConfigError, match=r"responder\.port: .*'8511'"):
        parse_config(document)


def test_port_out_of_range_named() -> None:
    document = {**MINIMAL, "responder": {"port": 70000}}
    with pytest.raises(ConfigError, match=r"responder\.port"):
        parse_config(document)


def test_invalid_address_named() -> None:
    document = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2"}}
    with pytest.raises(ConfigError, match=r"portal\.address"):
        parse_config(document)


def test_invalid_portal_url_named() -> None:
    document = {**MINIMAL, "portal": {"address": "192.0.2.1", "url": "ftp://x/"}}
    with pytest.raises(ConfigError, match=r"portal\.url: invalid URL"):
        parse_config(document)


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[gateway]\ninterface = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config(path)


def test_unreadable_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=str(missing)):
        load_config(missing)


def test_unreadable_terms_file_named(tmp_path: Path) -> None:
    document = {
        **MINIMAL,
        "portal": {"address": "192.0.2.1", "terms_file": str(tmp_path / "no")},
    }
    with pytest.raises(ConfigError, match=r"portal\.terms_file: cannot read"):
        parse_config(document)


def test_terms_file_directory_named() -> None:
    document = {**MINIMAL, "portal": {"address": "192.0.2.1", "terms_file": "/"}}
    with pytest.raises(ConfigError, match=r"portal\.terms_file: cannot read /: "):
        parse_config(document)


def test_terms_file_device_rejected() -> None:
    terms = {"address": "192.0.2.1", "terms_file": "/dev/zero"}
    with pytest.raises(ConfigError, match=r"/dev/zero is larger than 1048576 bytes"):
        parse_config({**MINIMAL, "portal": terms})


def test_terms_file_not_utf8_named(tmp_path: Path) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_bytes("Caf\u00e9 terms".encode("latin-1"))
    document = {**MINIMAL, "portal": {"address": "192.0.2.1", "terms_file": str(terms)}}

    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    message = str(raised.value)
    assert message.startswith(f"portal.terms_file: {terms} is not UTF-8 text")
    assert "0xe9 at offset 3" in message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), (1.5, 1.5), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)],
)
def test_duration_units(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "1w", "-5", 0, True, "h1", [1]])
def test_duration_invalid(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_invalid_duration_named_in_config() -> None:
    document = {**MINIMAL, "session": {"duration": "forever"}}
    with pytest.raises(ConfigError, match=r"session\.duration: invalid duration"):
        parse_config(document)


def test_same_port_twice_rejected() -> None:
    document = {**MINIMAL, "responder": {"port": 80}}
    with pytest.raises(
        ConfigError, match=r"responder\.port and portal\.port are both 80"
    ):
        parse_config(document)


def test_overlong_session_rejected() -> None:
    document = {**MINIMAL, "session": {"duration": "99999999d"}}
    with pytest.raises(ConfigError, match=r"session\.duration: .*maximum of 365 days"):
        parse_config(document)


def test_portal_limits_have_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.portal.max_connections_per_client == 32
    assert config.portal.request_timeout == 10
