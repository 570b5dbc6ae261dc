"""How `capport clients` prints the authorised devices."""

import subprocess
import sys

import pytest

from capport.clientlisting import (
    HEADINGS,
    PLAIN_LIST_ROWS,
    client_cells,
    plain_lines,
    print_clients,
    size,
)


def _row(n: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "session": n,
        "mac": f"02:00:00:00:{n // 256:02x}:{n % 256:02x}",
        "ip": f"10.0.{n // 256}.{n % 256}",
        "method": "click",
        "subject": None,
        "since": 1_800_000_000.0,
        "expires": 1_800_003_600.0,
        "remaining": 3599.0,
        "bytes_up": 0,
        "bytes_down": 0,
        "learned_ipv6": [],
    }
    row.update(changes)
    return row


def test_piped_list_has_one_line_per_client(capsys: pytest.CaptureFixture[str]) -> None:
    print_clients([_row(n) for n in range(3)], print)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(HEADINGS)
    assert len(lines) == 3 + 2
    assert lines[1].startswith("02:00:00:00:00:00  10.0.0.0 ")
    assert lines[-1] == "3 authorised device(s)."


def test_long_list_is_printed_as_lines(capsys: pytest.CaptureFixture[str]) -> None:
    print_clients([_row(n) for n in range(PLAIN_LIST_ROWS + 1)], print)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == PLAIN_LIST_ROWS + 3
    assert lines[-2].split()[-5:] == ["59m59s", "0", "B", "0", "B"]


def test_plain_columns_fit_their_widest_value() -> None:
    wide = "2001:db8:1:0:1234:5678:9abc:def0"
    lines = plain_lines([client_cells(_row(1, ip=wide)), client_cells(_row(2))])
    assert wide in lines[1]
    assert lines[0].index("method") == lines[1].index("click")
    assert lines[2].index("click") == lines[1].index("click")


def test_method_shows_its_subject() -> None:
    cells = client_cells(_row(1, method="user", subject="alice"))
    assert cells[HEADINGS.index("method")] == "user alice"


def test_traffic_is_shown_in_decimal_units() -> None:
    cells = client_cells(_row(1, bytes_down=1_234_567, bytes_up=999))
    assert cells[HEADINGS.index("received")] == "1.23 MB"
    assert cells[HEADINGS.index("sent")] == "999 B"


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (1000, "1 kB"),
        (999_600, "1 MB"),
        (5 * 10**12, "5 TB"),
        (7 * 10**15, "7000 TB"),
    ],
)
def test_size_rounds_to_the_next_unit(count: int, shown: str) -> None:
    assert size(count) == shown


def test_closed_output_pipe_ends_quietly() -> None:
    # The reader goes away after one line, as `capport clients | head -1`.
    row = _row(1)
    script = (
        "from capport.cli import print_clients_or_discard\n"
        f"row = {row!r}\n"
        "rows = [dict(row, session=i) for i in range(20000)]\n"
        "print_clients_or_discard(rows, False)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.readline()
    child.stdout.close()
    _, errors = child.communicate(timeout=30)

    assert child.returncode == 0
    assert errors == b""
