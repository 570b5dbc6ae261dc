"""How `capport clients` prints long lists."""

import pytest

from capport.cli import PLAIN_LIST_ROWS, _print_plain


def test_plain_list_has_one_line_per_client(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {
            "mac": f"02:00:00:00:{n // 256:02x}:{n % 256:02x}",
            "ip": f"10.0.{n // 256}.{n % 256}",
            "since": 1_800_000_000.0,
            "expires": 1_800_003_600.0,
            "remaining": 3599.0,
        }
        for n in range(PLAIN_LIST_ROWS + 1)
    ]
    _print_plain(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MAC", "IP", "since", "expires", "remaining"]
    assert len(lines) == PLAIN_LIST_ROWS + 2
    assert lines[1].startswith("02:00:00:00:00:00  10.0.0.0 ")
    assert lines[-1].endswith("59m59s")
