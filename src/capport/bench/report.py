"""The benchmark record: docs/BENCHMARKS.md and the summary table. No I/O.

The page states where the numbers came from (machine, versions, the exact
command) next to every figure, its reference and its target, so a reader
can judge and repeat them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.table import Table

from capport.bench.figures import Figure, Profile, Result


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The command, time, machine and versions of one benchmark run."""

    command: str
    started: datetime
    seconds: float
    quick: bool
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # The 1-minute load average at the start and at the end, and the cores.
    load: tuple[float, float] = (0.0, 0.0)
    cores: int = 1


# A load average above this share of the cores means other programs ran
# alongside the benchmarks, which the report then states.
BUSY_LOAD_PER_CORE = 0.5


def verdict(figure: Figure) -> str:
    """Return "yes", "no" or "-" (no target) for the met column."""
    met = figure.met
    if met is None:
        return "-"
    return "yes" if met else "no"


def summary_rows(results: Iterable[Result]) -> list[tuple[str, str, str, str, str]]:
    """Return (figure, value, reference, target, met) for every figure."""
    rows = []
    for result in results:
        if result.error is not None:
            rows.append((f"{result.title}: not measured", "error", "", "", "no"))
            continue
        for figure in result.figures:
            target = figure.target.describe() if figure.target else ""
            rows.append(
                (
                    figure.name,
                    figure.formatted(),
                    figure.reference,
                    target,
                    verdict(figure),
                )
            )
    return rows


def summary_table(results: Iterable[Result]) -> Table:
    """Build the table `capport bench` prints at the end of a run."""
    table = Table(
        "figure", "value", "reference", "target", "met", title="capport bench"
    )
    styles = {"yes": "green", "no": "red", "-": ""}
    for name, value, reference, target, met in summary_rows(results):
        table.add_row(name, value, reference, target, met, style=styles[met])
    return table


# The directory that contains src/capport, when capport runs from a checkout.
CHECKOUT = str(Path(__file__).resolve().parents[3])


def render_markdown(info: RunInfo, results: list[Result]) -> str:
    """Render the whole benchmark page."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `capport bench`; every number below comes from the run "
        "described here. Rerun the command to replace the page. What was "
        "changed to reach the targets, with figures before and after, is in "
        "[tuning.md](tuning.md).",
        "",
        f"- command: `{info.command}`",
        f"- started: {info.started:%Y-%m-%d %H:%M:%S %Z}".rstrip(),
        f"- duration: {_minutes(info.seconds)}",
        f"- mode: {_mode(info.quick)}",
        "",
    ]
    if max(info.load) > BUSY_LOAD_PER_CORE * info.cores:
        lines += [_busy_note(info), ""]
    lines += _key_value_section("Machine", info.machine)
    lines += _key_value_section("Versions", info.versions)
    lines += _summary_section(results)
    for result in results:
        lines += _result_section(result)
    page = "\n".join(lines).rstrip() + "\n"
    # Commands name programs in the checkout's virtual environment; the page
    # shows them relative to the checkout so it reads the same anywhere.
    return page.replace(f"{CHECKOUT}/", "")


def _mode(quick: bool) -> str:
    if quick:
        return (
            "quick (`--quick`): short runs and few devices, a smoke test of the "
            "harness; its figures are not a record of performance"
        )
    return "full"


def _busy_note(info: RunInfo) -> str:
    start, end = info.load
    return (
        f"Other programs were running on this {info.cores}-core machine during "
        f"the run: its load average was {start:.2f} at the start and {end:.2f} at "
        "the end. Ratios compare sides measured back to back in the same "
        "rounds, but absolute rates and latencies are worse than on an idle "
        "machine, and rounds vary more."
    )


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _key_value_section(title: str, values: dict[str, str]) -> list[str]:
    lines = [f"## {title}", "", "| | |", "| --- | --- |"]
    lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in values.items()]
    return [*lines, ""]


def _summary_section(results: list[Result]) -> list[str]:
    lines = [
        "## Summary",
        "",
        "| figure | value | reference | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in summary_rows(results):
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return [*lines, ""]


def _result_section(result: Result) -> list[str]:
    lines = [f"## {result.title}", ""]
    if result.error is not None:
        lines += ["The benchmark failed, so it has no figures:", "", "```text"]
        lines += [result.error, "```", ""]
    if result.method:
        lines += ["How it was measured:", ""]
        lines += [f"- {item}" for item in result.method]
        lines.append("")
    if result.figures:
        lines += ["| figure | value | measured | met |", "| --- | --- | --- | --- |"]
        for figure in result.figures:
            cells = (figure.name, figure.formatted(), figure.measured, verdict(figure))
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    if result.notes:
        lines += [f"{note}" for note in _paragraphs(result.notes)]
    if result.commands:
        lines += ["Commands, as run:", "", "```sh"]
        lines += result.commands
        lines += ["```", ""]
    for profile in result.profiles:
        lines += _profile_section(profile)
    lines.append(f"This benchmark took {_minutes(result.seconds)}.")
    return [*lines, ""]


def _profile_section(profile: Profile) -> list[str]:
    lines = [f"### Profile: {profile.title}", ""]
    if profile.cause:
        lines += [profile.cause, ""]
    if len(profile.threads) > 1:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in profile.threads)
        lines += [f"Samples by thread: {shares}.", ""]
    lines += [
        f"{profile.samples} samples from `{profile.command}`. Own: samples "
        "in which the function itself was running; total: samples in which "
        "it was on the stack.",
        "",
        "| function | own | total |",
        "| --- | --- | --- |",
    ]
    for entry in profile.entries:
        lines.append(
            f"| `{_cell(entry.function)}` | {entry.own_share:.1%} "
            f"| {entry.total_share:.1%} |"
        )
    return [*lines, ""]


def _paragraphs(notes: list[str]) -> list[str]:
    lines = []
    for note in notes:
        lines += [note, ""]
    return lines


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
