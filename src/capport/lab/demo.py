"""`capport lab demo`: build the laboratory and log two clients in for real.

Client c1 clicks through with curl, client c2 with Python's urllib (as a
subprocess in its namespace), each step printed with its timing and the
command that reproduces it. The laboratory is removed at the end, also
when a step fails or the demo is interrupted.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode

from rich.console import Console
from rich.markup import escape

from capport.errors import CapportError
from capport.lab.build import down, up
from capport.lab.flow import (
    Response,
    StepResult,
    check_online,
    flow_succeeded,
    run_login_flow,
)
from capport.lab.origin import MARKER
from capport.lab.topology import (
    GATEWAY_LAN_ADDRESS,
    ORIGIN_URL,
    PORTAL_HOST,
    Lab,
)

DEMO_PREFIX = "capdemo"
PORTAL_HOSTS = frozenset({GATEWAY_LAN_ADDRESS, PORTAL_HOST})
CURL_TIMEOUT_SECONDS = 10

T = TypeVar("T")


def parse_curl_output(text: str) -> Response:
    """Parse the output of `curl --include`: status line, headers, body.

    Interim 1xx responses, which curl prints as well, are skipped.
    """
    rest = text
    while True:
        head, separator, rest = rest.partition("\r\n\r\n")
        if not separator:
            raise ValueError(f"no HTTP header block in curl output: {text[:200]!r}")
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"invalid HTTP status line from curl: {status_line!r}")
        status = int(parts[1])
        if not 100 <= status < 200:
            break
    headers = []
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Response(status, headers, rest)


class CurlFetch:
    """Sends requests with curl from one client namespace of a laboratory."""

    def __init__(self, lab: Lab, role: str) -> None:
        self._lab = lab
        self._role = role
        self.last_command = ""

    def argv(self, method: str, url: str, form: dict[str, str] | None) -> list[str]:
        argv = ["curl", "-sS", "--include", "--max-time", str(CURL_TIMEOUT_SECONDS)]
        if form is not None:
            # --data-raw sends the body as given and implies POST with the
            # form content type; unlike --data it gives "@" no meaning.
            argv += ["--data-raw", urlencode(form)]
        if method not in ("GET", "POST"):
            argv += ["--request", method]
        return self._lab.exec_argv(self._role, [*argv, url])

    def __call__(
        self, method: str, url: str, form: dict[str, str] | None = None
    ) -> Response:
        argv = self.argv(method, url, form)
        self.last_command = shlex.join(argv)
        # Bytes, not text mode: text mode would turn the CRLF line ends
        # that separate the headers from the body into LF.
        result = subprocess.run(
            argv, capture_output=True, timeout=CURL_TIMEOUT_SECONDS + 5, check=False
        )
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            raise OSError(f"curl exited with status {result.returncode}: {error}")
        try:
            return parse_curl_output(result.stdout.decode("utf-8", errors="replace"))
        except ValueError as error:
            raise OSError(str(error)) from None


class DemoReport:
    """Prints the demo's steps and remembers the first failure."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.failure: str | None = None

    def heading(self, text: str) -> None:
        self.console.print()
        self.console.print(f"[bold]{escape(text)}[/bold]")

    def note(self, text: str) -> None:
        self.console.print(f"       [dim]{escape(text)}[/dim]", soft_wrap=True)

    def line(
        self, ok: bool, name: str, seconds: float, detail: str = "", client: str = ""
    ) -> None:
        mark = "[green]ok  [/green]" if ok else "[red]FAIL[/red]"
        self.console.print(f"  {mark} {escape(name):<44} {_duration(seconds):>9}")
        if detail:
            self.console.print(f"       {escape(detail)}", soft_wrap=True)
        if not ok and self.failure is None:
            where = f"{client}, " if client else ""
            self.failure = f"{where}{name}: {detail}"

    def step(self, step: StepResult, client: str) -> None:
        detail = f"{step.request} -> {step.detail}"
        self.line(step.ok, step.name, step.seconds, detail, client)

    def timed(self, name: str, action: Callable[[], T]) -> T:
        """Run action and print its duration; on an error print it and re-raise."""
        started = time.monotonic()
        try:
            value = action()
        except CapportError as error:
            self.line(False, name, time.monotonic() - started, str(error))
            raise
        self.line(True, name, time.monotonic() - started)
        return value


def run_demo(prefix: str = DEMO_PREFIX, console: Console | None = None) -> bool:
    """Build a laboratory, log c1 and c2 in, remove it; return whether all passed."""
    report = DemoReport(console or Console(highlight=False))
    report.heading(f"capport laboratory demo, prefix {prefix}")
    try:
        lab = report.timed(
            "build the laboratory, start the gateway", lambda: up(prefix)
        )
    except CapportError:
        _summarise(report)
        return False
    try:
        _describe(report, lab)
        passed = (
            _curl_flow(report, lab)
            and _urllib_flow(report, lab)
            and _still_online(report, lab)
        )
    finally:
        report.heading("Teardown")
        removed = report.timed("remove the laboratory", lambda: down(prefix))
        report.console.print(f"       removed {len(removed)} items")
    _summarise(report)
    return passed and report.failure is None


def _describe(report: DemoReport, lab: Lab) -> None:
    for role, namespace in lab.namespaces.items():
        report.console.print(
            f"       {role}: namespace {namespace}, {lab.addresses[role]}"
        )
    report.console.print(f"       gateway log: {lab.log_path}")


def _curl_flow(report: DemoReport, lab: Lab) -> bool:
    report.heading("Client c1 logs in with curl")
    fetch = CurlFetch(lab, "c1")

    def show(step: StepResult) -> None:
        report.step(step, "c1")
        report.note(fetch.last_command)

    results = run_login_flow(fetch, ORIGIN_URL, MARKER, PORTAL_HOSTS, on_step=show)
    return flow_succeeded(results)


def _urllib_flow(report: DemoReport, lab: Lab) -> bool:
    report.heading("Client c2 logs in with Python urllib")
    argv = [sys.executable, "-m", "capport.lab.probe"]
    report.note(shlex.join(lab.exec_argv("c2", argv)))
    started = time.monotonic()
    probe = lab.popen(
        "c2", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    results = []
    # The probe prints one JSON line per step as it goes, so each step is
    # shown when it happens. Its requests time out after 10 s each.
    for line in probe.stdout or []:
        step = StepResult.from_json(json.loads(line))
        results.append(step)
        report.step(step, "c2")
    _, errors = probe.communicate(timeout=30)
    if probe.returncode != 0 and not results:
        seconds = time.monotonic() - started
        report.line(False, "run the urllib client", seconds, errors.strip(), "c2")
    return probe.returncode == 0 and flow_succeeded(results)


def _still_online(report: DemoReport, lab: Lab) -> bool:
    report.heading("Client c1 is still online")
    started = time.monotonic()
    try:
        ok, detail, _ = check_online(CurlFetch(lab, "c1")("GET", ORIGIN_URL), MARKER)
    except OSError as error:
        ok, detail = False, str(error)
    report.line(ok, f"GET {ORIGIN_URL}", time.monotonic() - started, detail)
    return ok


def _summarise(report: DemoReport) -> None:
    report.console.print()
    if report.failure is None:
        report.console.print("[bold green]Every step behaved.[/bold green]")
    else:
        report.console.print(f"[bold red]Failed[/bold red] at {escape(report.failure)}")


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
