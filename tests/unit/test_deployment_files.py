"""The systemd unit and the example gateway configuration agree with capport."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from capport.config import Config, ControlSection, StoreSection, parse_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "capport.service"
EXAMPLE = ROOT / "examples" / "gateway.toml"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def example() -> Config:
    document = tomllib.loads(EXAMPLE.read_text())
    # The terms file exists only on the gateway itself.
    document["portal"].pop("terms_file")
    return parse_config(document, source=str(EXAMPLE))


def test_unit_runs_in_foreground() -> None:
    service = unit()["Service"]
    assert service["Type"] == "simple"
    assert "capport run --config /etc/capport/capport.toml" in service["ExecStart"]


def test_unit_checks_before_start() -> None:
    assert unit()["Service"]["ExecStartPre"].endswith("--check")


def test_unit_reloads_with_sighup() -> None:
    assert unit()["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_unit_capabilities() -> None:
    service = unit()["Service"]
    wanted = {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}
    assert set(service["CapabilityBoundingSet"].split()) == wanted
    assert set(service["AmbientCapabilities"].split()) == wanted


def test_unit_file_limit_covers_defaults() -> None:
    config = example()
    needed = config.responder.max_connections + config.portal.max_connections + 1024
    assert int(unit()["Service"]["LimitNOFILE"]) >= needed


def test_unit_protects_system() -> None:
    service = unit()["Service"]
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"


def test_unit_directories_hold_default_paths() -> None:
    service = unit()["Service"]
    store = StoreSection().path
    control = ControlSection().socket
    assert store.parent == Path("/var/lib") / service["StateDirectory"]
    assert control.parent == Path("/run") / service["RuntimeDirectory"]


def test_example_is_valid() -> None:
    config = example()
    assert config.gateway.interface == "eth1"
    assert config.store.retention == 90 * 86400


def test_example_paths_inside_unit_directories() -> None:
    config = example()
    service = unit()["Service"]
    assert config.store.path.parent == Path("/var/lib") / service["StateDirectory"]
    assert config.control.socket.parent == Path("/run") / service["RuntimeDirectory"]
    access_log = Path(config.log.access_log)
    assert access_log.parent == Path("/var/log") / service["LogsDirectory"]


def test_example_admin_on_loopback() -> None:
    assert example().admin.address.is_loopback


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_unit_verifies(tmp_path: Path) -> None:
    # systemd-analyze checks that ExecStart exists, so the copy points at
    # an executable that does.
    text = UNIT.read_text().replace("/opt/capport/bin/capport", "/bin/true")
    copy = tmp_path / "capport.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "capport.service" not in result.stderr, result.stderr
