"""Running the selected benchmarks on one testbed, with a progress display."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from capport.bench import abuse, dataplane, grants, responder, scale
from capport.bench.figures import Result
from capport.bench.machine import machine_info, tool_versions
from capport.bench.report import RunInfo, verdict
from capport.bench.settings import Settings
from capport.bench.testbed import Testbed, open_testbed

log = logging.getLogger("capport.bench")

Step = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One benchmark: its name for --only, its title, and how to run it.

    weight is its expected share of a full run's time, for the progress bar.
    """

    name: str
    title: str
    run: Callable[[Testbed, Settings, Step], Result]
    weight: float


# In running order. The responder and abuse benchmarks need client c1
# captive, so they come before any login. The scale benchmark fills the
# store with 100,000 sessions, so it comes last.
BENCHMARKS = (
    Benchmark(responder.NAME, responder.TITLE, responder.run, 35),
    Benchmark(abuse.NAME, abuse.TITLE, abuse.run, 8),
    Benchmark(dataplane.NAME, dataplane.TITLE, dataplane.run, 15),
    Benchmark(grants.NAME, grants.TITLE, grants.run, 10),
    Benchmark(scale.NAME, scale.TITLE, scale.run, 30),
)
NAMES = tuple(benchmark.name for benchmark in BENCHMARKS)


def select(names: Sequence[str]) -> list[Benchmark]:
    """Return the benchmarks named, in running order; all when names is empty."""
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        expected = ", ".join(NAMES)
        raise ValueError(
            f"unknown benchmark {', '.join(unknown)}: expected one of {expected}"
        )
    return [b for b in BENCHMARKS if not names or b.name in names]


def run_benchmarks(
    benchmarks: list[Benchmark],
    settings: Settings,
    prefix: str,
    command: str,
    console: Console,
) -> tuple[RunInfo, list[Result]]:
    """Build the testbed, run benchmarks on it in order, and remove it.

    A benchmark that fails is recorded with its error and the others still
    run; a failure to build the testbed propagates.
    """
    started_at = datetime.now().astimezone()
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    machine = machine_info()
    versions = tool_versions()
    results: list[Result] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        total = sum(benchmark.weight for benchmark in benchmarks)
        task = progress.add_task("building the laboratory", total=total)
        with open_testbed(prefix) as testbed:
            for benchmark in benchmarks:

                def step(text: str, title: str = benchmark.title) -> None:
                    progress.update(task, description=f"{title}: {text}")

                step("starting")
                result = _run_one(benchmark, testbed, settings, step)
                results.append(result)
                progress.advance(task, benchmark.weight)
                _print_result(progress.console, result)
            progress.update(task, description="removing the laboratory")
    load = os.getloadavg()
    machine["load average at end"] = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    info = RunInfo(
        command=command,
        started=started_at,
        seconds=time.monotonic() - started,
        quick=settings.quick,
        machine=machine,
        versions=versions,
        load=(load_start, load[0]),
        cores=os.cpu_count() or 1,
    )
    return info, results


def _run_one(
    benchmark: Benchmark, testbed: Testbed, settings: Settings, step: Step
) -> Result:
    started = time.monotonic()
    try:
        result = benchmark.run(testbed, settings, step)
    except Exception as error:
        # One benchmark failing must not lose the others' results; the
        # error is recorded in the report instead.
        log.debug("Benchmark %s failed.", benchmark.name, exc_info=True)
        result = Result(
            benchmark.name, benchmark.title, error=f"{type(error).__name__}: {error}"
        )
    result.seconds = time.monotonic() - started
    return result


def _print_result(console: Console, result: Result) -> None:
    title = escape(result.title)
    if result.error is not None:
        console.print(f"[red]{title}: failed[/red]: {escape(result.error)}")
        return
    console.print(f"[bold]{title}[/bold] ({result.seconds:.0f} s)")
    marks = {"yes": "[green]met[/green]", "no": "[red]missed[/red]", "-": ""}
    for figure in result.figures:
        line = f"{escape(figure.name)}: {escape(figure.formatted())}"
        console.print(f"  {line} {marks[verdict(figure)]}")
