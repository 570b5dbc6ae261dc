"""A terms file that cannot be used fails `capport doctor` and `run --check` cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from capport.cli import main


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    terms = tmp_path / "terms.txt"
    terms.write_bytes("Caf\u00e9 terms".encode("latin-1"))
    path = tmp_path / "capport.toml"
    path.write_text(
        '[gateway]\ninterface = "lan0"\n'
        f'[portal]\naddress = "192.0.2.1"\nterms_file = "{terms}"\n'
    )
    return path


def test_doctor_reports_terms_file(config_path: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "--config", str(config_path)])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.startswith("fail  configuration")
    assert "is not UTF-8 text" in result.output


def test_run_check_reports_terms_file(config_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--check", "--config", str(config_path)])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Error: portal.terms_file:" in result.output
    assert "is not UTF-8 text" in result.output
