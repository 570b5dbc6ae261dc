"""Firewall and store operations for the benchmarks, run in the gateway namespace.

    python -m capport.bench.nftworker grant CONFIG COUNT
    python -m capport.bench.nftworker install CONFIG COUNT [--device MAC/IP ...]
    python -m capport.bench.nftworker uninstall CONFIG
    python -m capport.bench.nftworker account CONFIG ROUNDS
    python -m capport.bench.nftworker counters CONFIG ROUNDS
    python -m capport.bench.nftworker reconcile CONFIG [--tracemalloc]

Each command goes through the same classes the daemon uses (the nftables
enforcer, the SQLite store, Gateway) and prints one JSON object. The
libnftables context binds its netlink socket where it is created, so the
worker must run inside the gateway's namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import resource
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

from capport.bench.devices import fake_devices
from capport.bench.parsing import parse_status_kilobytes, short_path
from capport.config import Config, load_config
from capport.enforce.base import Grant
from capport.enforce.nftables import NftablesEnforcer
from capport.enforce.ruleset import ALLOWED4
from capport.gateway import Gateway
from capport.models import Device
from capport.netlink import NetlinkNeighbours
from capport.store.sqlite import SQLiteStore

# Fake devices stay authorised for this long, well past any benchmark.
FAKE_TIMEOUT_SECONDS = 3600.0


def grant(config: Config, count: int) -> dict[str, Any]:
    """Authorise count fake devices in one transaction."""
    enforcer = NftablesEnforcer.from_config(config)
    grants = [Grant(device, FAKE_TIMEOUT_SECONDS) for device in fake_devices(count)]
    started = time.perf_counter()
    enforcer.grant(grants)
    return {"seconds": time.perf_counter() - started, "count": count}


def install(config: Config, count: int, devices: list[Device]) -> dict[str, Any]:
    """Replace the table with one authorising devices and count fake ones."""
    enforcer = NftablesEnforcer.from_config(config)
    everyone = devices + fake_devices(count)
    started = time.perf_counter()
    enforcer.install([Grant(device, FAKE_TIMEOUT_SECONDS) for device in everyone])
    return {"seconds": time.perf_counter() - started, "count": len(everyone)}


def uninstall(config: Config) -> dict[str, Any]:
    enforcer = NftablesEnforcer.from_config(config)
    started = time.perf_counter()
    enforcer.uninstall()
    return {"seconds": time.perf_counter() - started}


def account(config: Config, rounds: int) -> dict[str, Any]:
    """Time the enforcer's accounting read against `nft -j list set`, alternately.

    Both read the same namespace one after the other, so they see the same
    elements and the same kernel state. The enforcer's read is usage(), all
    that the gateway's periodic accounting pass reads from the kernel: both
    authorised sets, both download sets and the quota objects.
    """
    enforcer = NftablesEnforcer.from_config(config)
    table = config.firewall.table
    nft_argv = ["nft", "-j", "list", "set", "inet", table, ALLOWED4]
    passes = []
    for _ in range(rounds):
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        usage = enforcer.usage()
        seconds = time.perf_counter() - started
        cpu_seconds = _cpu_seconds() - cpu_started

        started = time.perf_counter()
        listing = subprocess.run(nft_argv, capture_output=True, check=True)
        nft_seconds = time.perf_counter() - started

        passes.append(
            {
                "enforcer_seconds": seconds,
                "enforcer_cpu_seconds": cpu_seconds,
                "enforcer_devices": len(usage),
                "nft_seconds": nft_seconds,
                "nft_elements": _element_count(listing.stdout),
            }
        )
    return {"passes": passes, "nft_command": " ".join(nft_argv)}


def _cpu_seconds() -> float:
    """Return the CPU time of this process and of its children that have ended.

    The enforcer installs tables through child `nft` processes, whose CPU
    time process_time() leaves out.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def counters(config: Config, rounds: int) -> dict[str, Any]:
    """Run the enforcer's accounting read rounds times, for a profile of it alone."""
    enforcer = NftablesEnforcer.from_config(config)
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        enforcer.usage()
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds}


def _element_count(output: bytes) -> int:
    data = json.loads(output)
    count = 0
    for item in data.get("nftables", []):
        count += len((item.get("set") or {}).get("elem", []))
    return count


async def reconcile(config: Config, trace_memory: bool) -> dict[str, Any]:
    """Start a Gateway on the configured store and firewall, as the daemon does.

    With trace_memory, tracemalloc records allocations from before the
    store is opened, and the largest allocation sites are returned.
    """
    if trace_memory:
        tracemalloc.start()
    store = SQLiteStore(config.store.path, config.store.synchronous)
    await store.open()
    try:
        enforcer = NftablesEnforcer.from_config(config)
        neighbours = NetlinkNeighbours(config.gateway.interface)
        gateway = Gateway(store, enforcer, neighbours, config.session.duration)
        started = time.perf_counter()
        await gateway.start()
        seconds = time.perf_counter() - started
        result: dict[str, Any] = {
            "seconds": seconds,
            "sessions": len(gateway.sessions()),
        }
        if trace_memory:
            result["memory"] = _memory_top(limit=10)
        else:
            result["rss_megabytes"] = _rss_megabytes()
            # glibc keeps freed memory in its heap, and malloc_trim returns
            # what it can to the kernel. The difference is resident memory
            # that was freed but kept.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            result["rss_after_trim_megabytes"] = _rss_megabytes()
        neighbours.close()
        enforcer.close()
    finally:
        await store.close()
    return result


def _rss_megabytes() -> float:
    status = Path("/proc/self/status").read_text()
    return parse_status_kilobytes(status, "VmRSS") * 1024 / 1e6


def _memory_top(limit: int) -> dict[str, Any]:
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    sites = []
    for stat in snapshot.statistics("lineno")[:limit]:
        frame = stat.traceback[0]
        sites.append(
            {
                "site": f"{short_path(frame.filename)}:{frame.lineno}",
                "bytes": stat.size,
                "count": stat.count,
            }
        )
    return {"current_bytes": current, "peak_bytes": peak, "sites": sites}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m capport.bench.nftworker")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("grant", "install"):
        command = commands.add_parser(name)
        command.add_argument("config", type=Path)
        command.add_argument("count", type=int)
        command.add_argument("--device", action="append", default=[])
    commands.add_parser("uninstall").add_argument("config", type=Path)
    for name in ("account", "counters"):
        command = commands.add_parser(name)
        command.add_argument("config", type=Path)
        command.add_argument("rounds", type=int)
    starting = commands.add_parser("reconcile")
    starting.add_argument("config", type=Path)
    starting.add_argument("--tracemalloc", action="store_true")
    arguments = parser.parse_args()

    config = load_config(arguments.config)
    if arguments.command == "grant":
        result = grant(config, arguments.count)
    elif arguments.command == "install":
        devices = [Device.parse(*item.split("/", 1)) for item in arguments.device]
        result = install(config, arguments.count, devices)
    elif arguments.command == "uninstall":
        result = uninstall(config)
    elif arguments.command == "account":
        result = account(config, arguments.rounds)
    elif arguments.command == "counters":
        result = counters(config, arguments.rounds)
    else:
        result = asyncio.run(reconcile(config, arguments.tracemalloc))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
