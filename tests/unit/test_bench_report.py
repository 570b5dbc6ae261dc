"""The benchmark page and the summary table."""

from __future__ import annotations

from datetime import UTC, datetime

from capport.bench.figures import (
    Figure,
    Profile,
    ProfileEntry,
    Result,
    at_least,
    under,
)
from capport.bench.report import RunInfo, render_markdown, summary_rows, summary_table

INFO = RunInfo(
    command="capport bench --only responder",
    started=datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
    seconds=125.4,
    quick=False,
    machine={"CPU": "Example CPU", "cores": "2"},
    versions={"nginx": "nginx version: nginx/1.22.1"},
)

MET = Figure(
    "511 responses per second, keep-alive",
    1.12,
    "x",
    measured="capport 56,000 req/s, nginx 50,000 req/s",
    reference="nginx `return 511`",
    target=at_least(1.0, "x"),
)
MISSED = Figure("login p99", 12.5, "ms", target=under(10.0, "ms"))
PLAIN = Figure("listing | table", 4.2, "s")


def _result(**changes: object) -> Result:
    result = Result("responder", "1. Responder", figures=[MET, MISSED, PLAIN])
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def test_summary_rows_verdicts() -> None:
    rows = summary_rows([_result()])
    assert [row[4] for row in rows] == ["yes", "no", "-"]
    assert rows[0][1] == "1.12x"
    assert rows[0][3] == "at least 1.00x"


def test_summary_row_for_failed_benchmark() -> None:
    rows = summary_rows([Result("scale", "4. Scale", error="BenchError: boom")])
    assert rows == [("4. Scale: not measured", "error", "", "", "no")]


def test_summary_table_has_a_row_per_figure() -> None:
    assert summary_table([_result()]).row_count == 3


def test_page_records_command_machine_and_versions() -> None:
    page = render_markdown(INFO, [_result()])
    assert "- command: `capport bench --only responder`" in page
    assert "| CPU | Example CPU |" in page
    assert "| nginx | nginx version: nginx/1.22.1 |" in page
    assert "- duration: 2 min 5 s" in page
    assert "- mode: full" in page


def test_page_summary_row() -> None:
    page = render_markdown(INFO, [_result()])
    expected = (
        "| 511 responses per second, keep-alive | 1.12x | nginx `return 511` "
        "| at least 1.00x | yes |"
    )
    assert expected in page


def test_page_escapes_table_cells() -> None:
    page = render_markdown(INFO, [_result()])
    assert "| listing \\| table | 4.20 s |" in page


def test_page_marks_quick_run() -> None:
    quick = RunInfo(INFO.command, INFO.started, 30.0, quick=True)
    page = render_markdown(quick, [_result()])
    assert "not a record of performance" in page


def test_page_shows_benchmark_error() -> None:
    failed = Result("scale", "4. Scale", error="BenchError: nft failed")
    page = render_markdown(INFO, [failed])
    assert "## 4. Scale" in page
    assert "BenchError: nft failed" in page


def test_page_lists_method_notes_and_commands() -> None:
    result = _result(
        method=["wrk in client c1."],
        notes=["A note."],
        commands=["ip netns exec capbench-c1 wrk http://198.51.100.80/"],
    )
    page = render_markdown(INFO, [result])
    assert "- wrk in client c1." in page
    assert "A note." in page
    assert "ip netns exec capbench-c1 wrk http://198.51.100.80/" in page


def test_page_shows_profile_entries() -> None:
    profile = Profile(
        title="daemon under wrk",
        command="py-spy record --pid 42",
        samples=500,
        entries=(
            ProfileEntry("data_received (capport/intercept/connection.py)", 0.25, 0.5),
        ),
        cause="It is CPU-bound.",
        threads=(("MainThread", 0.75), ("capport-store_0", 0.25)),
    )
    page = render_markdown(INFO, [_result(profiles=[profile])])
    assert "### Profile: daemon under wrk" in page
    assert "It is CPU-bound." in page
    assert "Samples by thread: MainThread 75%, capport-store_0 25%." in page
    assert "500 samples from `py-spy record --pid 42`" in page
    assert (
        "| `data_received (capport/intercept/connection.py)` | 25.0% | 50.0% |" in page
    )


def test_page_ends_with_one_newline() -> None:
    page = render_markdown(INFO, [_result()])
    assert page.endswith("\n")
    assert not page.endswith("\n\n")


def test_busy_machine_noted() -> None:
    busy = RunInfo(INFO.command, INFO.started, 60.0, False, load=(2.5, 1.8), cores=2)
    page = render_markdown(busy, [_result()])
    assert "load average was 2.50 at the start and 1.80 at the end" in page


def test_idle_machine_not_noted() -> None:
    idle = RunInfo(INFO.command, INFO.started, 60.0, False, load=(0.3, 0.9), cores=2)
    page = render_markdown(idle, [_result()])
    assert "Other programs were running" not in page
