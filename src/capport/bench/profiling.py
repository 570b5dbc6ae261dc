"""Sampling profiles with py-spy, taken when a benchmark misses its target.

py-spy reads the interpreter's stacks from outside the process, so the
daemon runs unchanged. It samples with --nonblocking, which does not stop
the process for each sample and so perturbs the figure being explained as
little as possible, at the price of an occasional torn stack.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from capport.bench.figures import Profile
from capport.bench.parsing import thread_shares, top_profile_entries
from capport.bench.testbed import BenchError

SAMPLE_RATE = 500
INSTALL_HINT = (
    "py-spy is not installed, so no profile was taken; install it with "
    "`.venv/bin/pip install py-spy` and run the benchmark again"
)


def py_spy() -> str | None:
    """Return the py-spy executable, preferring the one beside this Python."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def record_argv(executable: str, output: Path, seconds: float | None) -> list[str]:
    argv = [
        executable,
        "record",
        "--format",
        "raw",
        "--output",
        str(output),
        "--rate",
        str(SAMPLE_RATE),
        "--nonblocking",
        "--threads",
    ]
    if seconds is not None:
        argv += ["--duration", str(max(1, round(seconds)))]
    return argv


class Recording:
    """py-spy attached to a running process for a fixed time, in the background.

    start() before the load, finish() after it: finish waits for py-spy to
    write its samples and returns their top entries.
    """

    def __init__(self, executable: str, pid: int, seconds: float, output: Path) -> None:
        self.output = output
        self.argv = [*record_argv(executable, output, seconds), "--pid", str(pid)]
        self._seconds = seconds
        self._process: subprocess.Popen[str] | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def start(self) -> None:
        self.output.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def finish(self, title: str, cause: str = "") -> Profile:
        process, self._process = self._process, None
        if process is None:
            raise BenchError("py-spy was not started")
        try:
            output, _ = process.communicate(timeout=self._seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise BenchError(f"`{self.command}` did not finish") from None
        return read_profile(self.output, title, self.command, cause, output)


def read_profile(
    path: Path, title: str, command: str, cause: str, output: str = ""
) -> Profile:
    """Read py-spy's raw output at path into a Profile of its top entries."""
    try:
        collapsed = path.read_text()
    except OSError as error:
        raise BenchError(
            f"`{command}` wrote no profile ({error.strerror}): {output.strip()[-500:]}"
        ) from None
    samples, entries = top_profile_entries(collapsed)
    threads = tuple(thread_shares(collapsed))
    return Profile(title, command, samples, tuple(entries), cause, threads)


def wrap_command(executable: str, output: Path, argv: Sequence[str]) -> list[str]:
    """Return argv run under py-spy from its start to its end."""
    return [*record_argv(executable, output, None), "--", *argv]
