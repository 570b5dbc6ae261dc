"""The machine and the tool versions a benchmark run is recorded with."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import capport

# Debian 12 package of each tool the benchmarks start: the load tools, and
# perf for the data plane's per-packet cost in the kernel.
TOOL_PACKAGES = {
    "wrk": "wrk",
    "iperf3": "iperf3",
    "nginx": "nginx",
    "perf": "linux-perf",
}

_VERSION_COMMANDS = {
    "nftables": ["nft", "--version"],
    "nginx": ["nginx", "-v"],
    "wrk": ["wrk", "-v"],
    "iperf3": ["iperf3", "--version"],
    "perf": ["perf", "--version"],
}


def machine_info() -> dict[str, str]:
    """Describe the CPU, memory, kernel and operating system."""
    cpuinfo = _read("/proc/cpuinfo")
    info = {
        "CPU": _first_value(cpuinfo, "model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "virtual machine": "yes" if " hypervisor" in cpuinfo else "no",
        "memory": _memory(_read("/proc/meminfo")),
        "kernel": platform.release(),
        "system": _os_name(_read("/etc/os-release")),
    }
    load = os.getloadavg()
    info["load average at start"] = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    return info


def tool_versions() -> dict[str, str]:
    """Return the versions of Python, capport, its hot-path libraries and the tools."""
    versions = {
        "Python": platform.python_version(),
        "capport": _capport_version(),
    }
    for package in ("uvloop", "httptools", "uvicorn", "starlette", "py-spy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    for tool, argv in _VERSION_COMMANDS.items():
        versions[tool] = _command_version(argv)
    return versions


def missing_tools() -> list[str]:
    """Return the Debian packages of the load tools that are not installed."""
    return [
        package for tool, package in TOOL_PACKAGES.items() if shutil.which(tool) is None
    ]


def version_line(output: str) -> str:
    """Return the first line of a --version output, without a copyright notice."""
    lines = output.strip().splitlines()
    first = lines[0] if lines else ""
    return first.split(" Copyright", 1)[0].strip()


def _command_version(argv: list[str]) -> str:
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    # nginx -v prints to standard error; the others to standard output.
    return version_line(completed.stdout or completed.stderr) or "unknown"


def _capport_version() -> str:
    source = Path(capport.__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(source), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return capport.__version__
    if completed.returncode != 0:
        return capport.__version__
    return f"{capport.__version__} (git {completed.stdout.strip()})"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _first_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def _memory(meminfo: str) -> str:
    value = _first_value(meminfo, "MemTotal")
    if value is None or not value.endswith(" kB"):
        return "unknown"
    return f"{int(value.split()[0]) / 1024 / 1024:.1f} GiB"


def _os_name(os_release: str) -> str:
    value = _first_value(os_release.replace("=", ":"), "PRETTY_NAME")
    return value.strip('"') if value else "unknown"
