"""The [tls] and [api] settings, the HTTPS port in the firewall, and tls init."""

from __future__ import annotations

import stat
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from capport.cli import main
from capport.config import Config, parse_config
from capport.enforce.ruleset import RulesetSpec, input_rules
from capport.errors import ConfigError
from capport.reload import restart_keys
from capport.tlsinit import (
    CA_CERTIFICATE_NAME,
    CA_KEY_NAME,
    check_tls_files,
    init_tls,
    spki_hash,
)

TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}


def make_config(tmp_path: Path | None = None, **sections: Any) -> Config:
    document: dict[str, Any] = {
        "gateway": {"interface": "lan0"},
        "portal": {"address": "192.0.2.1"},
    }
    if tmp_path is not None:
        document["tls"] = {
            "certificate": str(tmp_path / "tls" / "portal.pem"),
            "key": str(tmp_path / "keys" / "portal-key.pem"),
            "hostname": "portal.example",
        }
    document.update(sections)
    return parse_config(document)


# Configuration


def test_portal_url_is_http_without_tls() -> None:
    assert make_config().portal_url() == "http://192.0.2.1/"


def test_portal_url_is_https_with_tls(tmp_path: Path) -> None:
    assert make_config(tmp_path).portal_url() == "https://portal.example/"


def test_portal_url_names_tls_port_other_than_443(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    tls = config.tls.model_copy(update={"port": 8443})
    config = config.model_copy(update={"tls": tls})
    assert config.portal_url() == "https://portal.example:8443/"


def test_configured_portal_url_wins_over_tls(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, portal={"address": "192.0.2.1", "url": "https://wifi.example/"}
    )
    assert config.portal_url() == "https://wifi.example/"


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"certificate": "/c.pem", "hostname": "p.example"}, "both certificate"),
        ({"certificate": "/c.pem", "key": "/k.pem"}, "hostname is required"),
        ({"hostname": "bad host"}, "tls.hostname"),
        ({"port": 0}, "tls.port"),
    ],
)
def test_invalid_tls_section_rejected(tls: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(tls=tls)


def test_invalid_venue_url_rejected() -> None:
    with pytest.raises(ConfigError, match="api.venue_info_url"):
        make_config(api={"venue_info_url": "javascript:alert(1)"})


def test_probe_change_needs_restart() -> None:
    new = make_config(probes=[{"host": "p.example", "path": "/c"}])
    assert restart_keys(make_config(), new) == ["probes"]


# The firewall's input chain


def portal_rule(spec: RulesetSpec) -> list[dict[str, Any]]:
    rules = [
        r
        for r in input_rules(spec)
        if any(m.get("match", {}).get("left") == DADDR for m in r)
    ]
    assert len(rules) == 1
    return rules[0]


def port_match(rule: list[dict[str, Any]]) -> Any:
    return next(
        m["match"]["right"] for m in rule if m.get("match", {}).get("left") == TCP_DPORT
    )


def test_input_accepts_https_port_with_tls(tmp_path: Path) -> None:
    spec = RulesetSpec.from_config(make_config(tmp_path))
    assert port_match(portal_rule(spec)) == {"set": [80, 443]}


def test_input_accepts_only_http_port_without_tls() -> None:
    spec = RulesetSpec.from_config(make_config())
    assert port_match(portal_rule(spec)) == 80


# capport tls init


def test_init_writes_ca_certificate_and_keys(tmp_path: Path) -> None:
    files = init_tls(make_config(tmp_path))
    assert files.ca_certificate == tmp_path / "tls" / CA_CERTIFICATE_NAME
    assert files.ca_key == tmp_path / "tls" / CA_KEY_NAME
    for path in (files.ca_certificate, files.certificate):
        assert path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    for path in (files.ca_key, files.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_certificate_is_issued_by_ca(tmp_path: Path) -> None:
    files = init_tls(make_config(tmp_path))
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    certificate = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    certificate.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_certificate_names_host_and_address(tmp_path: Path) -> None:
    files = init_tls(make_config(tmp_path))
    certificate = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    names = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert names.get_values_for_type(x509.DNSName) == ["portal.example"]
    assert names.get_values_for_type(x509.IPAddress) == [IPv4Address("192.0.2.1")]
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(usage.value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_init_reports_spki_hash_of_certificate(tmp_path: Path) -> None:
    files = init_tls(make_config(tmp_path))
    certificate = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    assert files.spki_sha256 == spki_hash(certificate)
    assert len(files.spki_sha256) == 44


def test_init_keeps_existing_ca_without_force(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first = init_tls(config)
    before = first.ca_certificate.read_bytes()
    with pytest.raises(ConfigError, match="--force"):
        init_tls(config)
    assert first.ca_certificate.read_bytes() == before


def test_init_replaces_files_with_force(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    before = init_tls(config).ca_certificate.read_bytes()
    after = init_tls(config, force=True).ca_certificate.read_bytes()
    assert after != before


def test_init_needs_tls_section() -> None:
    with pytest.raises(ConfigError, match="tls.hostname are missing"):
        init_tls(make_config())


def test_check_accepts_files_from_init(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    init_tls(config)
    check_tls_files(config)


def test_check_rejects_missing_certificate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        check_tls_files(make_config(tmp_path))


def test_check_rejects_key_of_other_certificate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    files = init_tls(config)
    files.key.write_bytes(files.ca_key.read_bytes())
    with pytest.raises(ConfigError, match="not a valid PEM certificate"):
        check_tls_files(config)


def test_cli_tls_init_prints_files(tmp_path: Path) -> None:
    config_path = tmp_path / "capport.toml"
    config_path.write_text(
        '[gateway]\ninterface = "lan0"\n[portal]\naddress = "192.0.2.1"\n'
        f'[tls]\ncertificate = "{tmp_path}/tls/portal.pem"\n'
        f'key = "{tmp_path}/tls/portal-key.pem"\nhostname = "portal.example"\n'
    )
    result = CliRunner().invoke(main, ["tls", "init", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert f"CA certificate:     {tmp_path}/tls/capport-ca.pem" in result.output
    assert "server SPKI SHA-256 (base64): " in result.output
    assert (tmp_path / "tls" / "portal.pem").is_file()


def test_cli_tls_init_refuses_second_run(tmp_path: Path) -> None:
    config_path = tmp_path / "capport.toml"
    config_path.write_text(
        '[gateway]\ninterface = "lan0"\n[portal]\naddress = "192.0.2.1"\n'
        f'[tls]\ncertificate = "{tmp_path}/portal.pem"\n'
        f'key = "{tmp_path}/portal-key.pem"\nhostname = "portal.example"\n'
    )
    arguments = ["tls", "init", "--config", str(config_path)]
    assert CliRunner().invoke(main, arguments).exit_code == 0
    second = CliRunner().invoke(main, arguments)
    assert second.exit_code == 1
    assert "--force" in second.output
