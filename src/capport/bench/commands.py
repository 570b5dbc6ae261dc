"""`capport bench`: run the benchmarks and write docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
from rich.console import Console

from capport.bench.machine import missing_tools
from capport.bench.report import render_markdown, summary_table
from capport.bench.runner import NAMES, run_benchmarks, select
from capport.bench.settings import FULL, QUICK
from capport.bench.testbed import BENCH_PREFIX
from capport.errors import CapportError


@click.command(
    "bench",
    help=(
        "Run capport's benchmarks in a namespace laboratory of their own and "
        "write the results, with the machine, the versions and this command, "
        "to a Markdown file. Needs root. The full run takes about 6 minutes "
        "on 2 idle cores. wrk, iperf3, nginx and perf are installed with "
        "apt-get when missing; apart from that, nothing outside the laboratory (its "
        "namespaces, /etc/netns/PREFIX-c1 and -c2, /run/capport-lab/PREFIX) "
        "is changed."
    ),
)
@click.option(
    "--quick",
    is_flag=True,
    help="Short rounds and few devices: a smoke test of a few minutes, not a record.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice(NAMES),
    help="Run only this benchmark; repeat the option to run several.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("docs/BENCHMARKS.md"),
    show_default=True,
    help="The Markdown file the results are written to.",
)
@click.option(
    "--prefix",
    default=BENCH_PREFIX,
    show_default=True,
    help="Prefix of the laboratory's namespaces and state directory.",
)
def bench_command(
    quick: bool, only: tuple[str, ...], output: Path, prefix: str
) -> None:
    if os.geteuid() != 0:
        raise click.ClickException(
            "capport bench must run as root: it builds network namespaces. "
            "Run it again with sudo."
        )
    _install_tools()
    console = Console(highlight=False)
    settings = QUICK if quick else FULL
    try:
        info, results = run_benchmarks(
            select(only), settings, prefix, _command_line(), console
        )
    except CapportError as error:
        raise click.ClickException(str(error)) from None
    console.print(summary_table(results))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_markdown(info, results), encoding="utf-8")
    console.print(f"Wrote {output}.")
    if any(result.error is not None for result in results):
        sys.exit(1)


def _install_tools() -> None:
    packages = missing_tools()
    if not packages:
        return
    click.echo(f"Installing Debian packages: {' '.join(packages)}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        completed = subprocess.run(argv, env=environment, check=False)
        if completed.returncode != 0:
            raise click.ClickException(
                f"`{shlex.join(argv)}` failed with status {completed.returncode}; "
                f"install {' '.join(packages)} and run capport bench again"
            )


def _command_line() -> str:
    """Return the command as the person typed it, for the record."""
    if Path(sys.argv[0]).name == "capport":
        return shlex.join(["capport", *sys.argv[1:]])
    # Run as a module: orig_argv keeps "-m capport..." as it was typed.
    return shlex.join(["python", *sys.orig_argv[1:]])


if __name__ == "__main__":
    bench_command()
