"""Commands and background processes inside the laboratory's namespaces.

This is where failures of `ip`, `sysctl` and child processes become LabError,
with the command and its output in the message.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from capport.errors import CapportError

log = logging.getLogger("capport.lab")

NETNS_DIR = Path("/run/netns")

# Popen handles of the children this Python process started, by PID. Stopping
# a child through its handle reaps it, so no zombie keeps the PID looking alive
# and Popen does not warn about a child still running at exit.
_children: dict[int, subprocess.Popen[bytes]] = {}
_exit_statuses: dict[int, int] = {}


class LabError(CapportError, RuntimeError):
    """Building, using or removing the namespace laboratory failed."""


def netns_argv(namespace: str, argv: Sequence[str]) -> list[str]:
    """Return argv prefixed to run inside namespace.

    `ip netns exec` execs the command in place (iproute2 6.1 forks only in
    batch mode), so a child started this way keeps the PID Popen reports.
    """
    return ["ip", "netns", "exec", namespace, *argv]


def run_checked(argv: Sequence[str], timeout: float = 30.0) -> str:
    """Run argv to completion and return its standard output.

    Raises LabError naming the command when it is missing, times out or exits
    with a non-zero status.
    """
    command = " ".join(argv)
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(
            f"command not found: {argv[0]}; install it (iproute2 provides ip)"
        ) from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{command}` timed out after {timeout:.0f} s") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise LabError(
            f"`{command}` failed with exit status {result.returncode}: {output}"
        )
    return result.stdout


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


# Background processes


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process the laboratory started, identified beyond its PID.

    start_time is field 22 of /proc/PID/stat (clock ticks after boot). The
    kernel can reuse a PID once its process is gone, but not the pair, so a
    record left behind by a crash never leads to signalling another process.
    """

    pid: int
    start_time: int

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> ProcessRecord:
        return cls(int(data["pid"]), int(data["start_time"]))


def spawn(namespace: str, argv: Sequence[str], log_path: Path) -> ProcessRecord:
    """Start argv in namespace in the background, appending its output to log_path.

    The child gets its own session, so Ctrl-C in the terminal that built the
    laboratory does not reach it and it outlives a `capport lab up` command.
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log_file:
        try:
            process = subprocess.Popen(
                netns_argv(namespace, argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )
        except FileNotFoundError:
            raise LabError("command not found: ip; install iproute2") from None
    _children[process.pid] = process
    _exit_statuses.pop(process.pid, None)
    start_time = _start_time(process.pid)
    if start_time is None:
        # The child exited before its /proc entry could be read.
        process.wait()
        _children.pop(process.pid, None)
        _exit_statuses[process.pid] = process.returncode
        raise LabError(
            f"`{' '.join(argv)}` in namespace {namespace} exited at once "
            f"with status {process.returncode}; see {log_path}"
        )
    log.debug("Started PID %d in %s: %s", process.pid, namespace, " ".join(argv))
    return ProcessRecord(process.pid, start_time)


def is_running(record: ProcessRecord) -> bool:
    """Tell whether the recorded process is alive and not a zombie."""
    stat = _read_stat(record.pid)
    if stat is None or stat[1] != record.start_time:
        return False
    process = _children.get(record.pid)
    if process is not None:
        # A child of this process counts as running until it is reaped. Its
        # /proc state turns to Z as soon as the main thread exits, but the
        # kernel reports it to waitpid only after every other thread has
        # exited too, and only then is its exit status known.
        _reap(record.pid)
        return record.pid in _children
    return stat[0] != "Z"


def exit_status(pid: int) -> int | None:
    """Return the exit status of a child started here, once it has exited."""
    _reap(pid)
    return _exit_statuses.get(pid)


def stop(record: ProcessRecord, sig: int, timeout: float) -> bool:
    """Send sig to the recorded process and wait up to timeout for it to exit.

    Returns whether it is gone. A process whose start time no longer matches
    the record is someone else's and is left alone.
    """
    if not is_running(record):
        return True
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while is_running(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def terminate(record: ProcessRecord, timeout: float = 5.0) -> None:
    """Stop the process with SIGTERM, then SIGKILL if it has not exited."""
    if stop(record, signal.SIGTERM, timeout):
        return
    log.warning("PID %d ignored SIGTERM for %.0f s; killing it.", record.pid, timeout)
    if not stop(record, signal.SIGKILL, timeout):
        raise LabError(f"PID {record.pid} did not exit after SIGKILL")


def namespace_processes(namespace: str) -> list[ProcessRecord]:
    """Return the processes whose network namespace is namespace."""
    if not namespace_exists(namespace):
        return []
    output = run_checked(["ip", "netns", "pids", namespace])
    records = []
    for word in output.split():
        start_time = _start_time(int(word))
        if start_time is not None:
            records.append(ProcessRecord(int(word), start_time))
    return records


def _reap(pid: int) -> None:
    process = _children.get(pid)
    if process is not None and process.poll() is not None:
        _exit_statuses[pid] = process.returncode
        del _children[pid]


def _start_time(pid: int) -> int | None:
    stat = _read_stat(pid)
    return None if stat is None else stat[1]


def _read_stat(pid: int) -> tuple[str, int] | None:
    """Return the state letter and start time of pid, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2, the command name, may itself contain spaces and parentheses,
    # so the fields are counted from the last ")". Field 3 is the state and
    # field 22 the start time (proc(5)).
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])
