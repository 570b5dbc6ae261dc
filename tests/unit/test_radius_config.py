"""Validation of the [radius] section of the configuration."""

from pathlib import Path
from typing import Any

import pytest

from capport.config import parse_config
from capport.errors import ConfigError

SECRET = "s3cret-value-never-shown"


def document(**radius: Any) -> dict[str, Any]:
    section = {"servers": [{"address": "127.0.0.1", "secret": SECRET}], **radius}
    return {
        "gateway": {"interface": "lan0"},
        "portal": {"address": "192.0.2.1"},
        "auth": {"methods": ["click-through", "radius"]},
        "radius": section,
    }


def test_radius_defaults() -> None:
    radius = parse_config(document()).radius
    assert radius is not None
    assert radius.timeout == 3.0
    assert radius.retries == 2
    assert radius.authentication == "pap"
    assert radius.accounting is True
    assert radius.interim_interval == 300.0
    assert radius.servers[0].auth_port == 1812
    assert radius.servers[0].acct_port == 1813
    assert radius.servers[0].secret_bytes() == SECRET.encode()


def test_radius_absent_by_default() -> None:
    bare = {k: v for k, v in document().items() if k not in ("radius", "auth")}
    assert parse_config(bare).radius is None


def test_radius_method_needs_section() -> None:
    without = {k: v for k, v in document().items() if k != "radius"}
    with pytest.raises(ConfigError, match=r"auth\.methods: .*\[radius\] section"):
        parse_config(without)


def test_section_needs_radius_method() -> None:
    unlisted = {**document(), "auth": {"methods": ["click-through"]}}
    with pytest.raises(ConfigError, match=r"radius: .*does not list"):
        parse_config(unlisted)


def test_durations_accept_units() -> None:
    radius = parse_config(document(timeout="2s")).radius
    assert radius is not None
    assert radius.timeout == 2.0


def test_servers_required() -> None:
    with pytest.raises(ConfigError, match=r"radius\.servers"):
        parse_config(document(servers=[]))


def test_unknown_authentication_named() -> None:
    with pytest.raises(ConfigError, match=r"radius\.authentication"):
        parse_config(document(authentication="mschap"))


def test_missing_secret_named() -> None:
    with pytest.raises(ConfigError, match=r"radius\.servers\.0: .*exactly one"):
        parse_config(document(servers=[{"address": "127.0.0.1"}]))


def test_two_secrets_rejected_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("x\n")
    server = {"address": "127.0.0.1", "secret": SECRET, "secret_file": str(path)}
    with pytest.raises(ConfigError) as caught:
        parse_config(document(servers=[server]))
    assert "exactly one" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_invalid_secret_type_not_echoed() -> None:
    server = {"address": "127.0.0.1", "secret": 12345678}
    with pytest.raises(ConfigError) as caught:
        parse_config(document(servers=[server]))
    assert "radius.servers.0.secret" in str(caught.value)
    assert "12345678" not in str(caught.value)


def test_secret_file_read_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    server = {"address": "127.0.0.1", "secret_file": str(path)}
    radius = parse_config(document(servers=[server])).radius
    assert radius is not None
    assert radius.servers[0].secret_bytes() == SECRET.encode()


def test_missing_secret_file_named(tmp_path: Path) -> None:
    server = {"address": "127.0.0.1", "secret_file": str(tmp_path / "absent")}
    with pytest.raises(ConfigError, match=r"secret_file .*absent"):
        parse_config(document(servers=[server]))


def test_empty_secret_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("\n")
    server = {"address": "127.0.0.1", "secret_file": str(path)}
    with pytest.raises(ConfigError, match="empty"):
        parse_config(document(servers=[server]))


def test_host_name_rejected() -> None:
    server = {"address": "radius.example", "secret": SECRET}
    with pytest.raises(ConfigError, match=r"radius\.servers\.0\.address"):
        parse_config(document(servers=[server]))


def test_config_repr_hides_secret() -> None:
    assert SECRET not in repr(parse_config(document()))


def test_accounting_usage_has_both_directions() -> None:
    from capport.auth.radius.method import usage_from_traffic
    from capport.enforce.base import DeviceUsage, Traffic
    from capport.models import Device

    device = Device.parse("02:00:00:00:00:11", "192.0.2.11")
    read = usage_from_traffic(lambda: {device: DeviceUsage(Traffic(up=10, down=250))})
    usage = read()[device]
    assert usage.input_octets == 10
    assert usage.output_octets == 250
