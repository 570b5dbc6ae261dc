"""Many clients at once against the gateway, from one client namespace.

Run inside a client namespace of the laboratory whose interface carries the
extra source addresses, so the gateway sees each address as a separate
client. Each address is bound explicitly, and every connection goes to the
target address and port, which the gateway redirects to its responder.

    burst  Every address sends per-address requests in parallel, one GET per
           connection, and waits for all of them to finish: that is a round.
           Rounds follow each other until standard input closes or a limit
           is reached. One JSON line is printed after the first round
           ("ready"), and a summary when the run ends ("done").
    idle   Every address opens per-address connections and sends nothing.
           They are held until standard input closes or --hold-seconds
           pass, then each is checked for still being open. One JSON line
           is printed once all are open ("ready"), and a summary at the end
           ("done").

Times are time.monotonic() values, comparable with other processes on the
same host. The script raises its own open-file limit to what it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

# The responder's 511 page is about 1 KB. A longer response is not the
# responder's, and reading stops at this size.
MAX_RESPONSE_BYTES = 64 * 1024
# File descriptors needed besides the sockets: the standard streams, the
# event loop's own and any a library opens.
SPARE_DESCRIPTORS = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: its status, or the error that replaced it, and latency."""

    status: int | None
    error: str | None
    seconds: float


def source_addresses(first: str, count: int) -> list[str]:
    start = ipaddress.IPv4Address(first)
    return [str(start + offset) for offset in range(count)]


def raise_file_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE to at least needed, raising the hard limit as root."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))


def parse_status(data: bytes) -> int | None:
    """Return the status code of an HTTP/1.x response, or None if it has none."""
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) < 2 or not line[0].startswith(b"HTTP/1.") or not line[1].isdigit():
        return None
    return int(line[1])


def error_name(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__


async def stdin_closed() -> None:
    """Return once standard input reaches its end."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, sys.stdin)
    while await reader.read(4096):
        pass


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


# burst


async def one_request(
    source: str, host: str, port: int, request: bytes, timeout: float
) -> Outcome:
    """Send one GET from source on a new connection and read the whole response."""
    started = time.monotonic()
    data = b""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(source, 0)
            )
            try:
                writer.write(request)
                # The request sends Connection: close, so the response ends
                # when the server closes the connection.
                while chunk := await reader.read(65536):
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        break
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        return Outcome(None, error_name(error), time.monotonic() - started)
    status = parse_status(data)
    problem = None if status is not None else "no HTTP status line"
    return Outcome(status, problem, time.monotonic() - started)


async def run_round(
    sources: list[str], options: argparse.Namespace, request: bytes
) -> list[Outcome]:
    host, port = options.target_host, options.target_port
    requests: list[Awaitable[Outcome]] = [
        one_request(source, host, port, request, options.timeout)
        for source in sources
        for _ in range(options.per_address)
    ]
    return list(await asyncio.gather(*requests))


def percentile(ordered: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    latencies = sorted(outcome.seconds for outcome in outcomes)
    statuses = Counter(str(o.status) for o in outcomes if o.status is not None)
    errors = Counter(o.error for o in outcomes if o.error is not None)
    return {
        "requests": len(outcomes),
        "statuses": dict(statuses),
        "errors": dict(errors),
        "p50_seconds": round(percentile(latencies, 0.50), 4),
        "p90_seconds": round(percentile(latencies, 0.90), 4),
        "p99_seconds": round(percentile(latencies, 0.99), 4),
        "max_seconds": round(latencies[-1], 4),
    }


async def burst(options: argparse.Namespace) -> None:
    sources = source_addresses(options.first, options.count)
    request = (
        f"GET {options.path} HTTP/1.1\r\nHost: {options.host_header}\r\n"
        "User-Agent: capport-load-clients\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    stop = asyncio.create_task(stdin_closed())
    deadline = time.monotonic() + options.max_seconds
    outcomes: list[Outcome] = []
    rounds: list[tuple[float, float]] = []
    while len(rounds) < options.max_rounds and time.monotonic() < deadline:
        started = time.monotonic()
        outcomes += await run_round(sources, options, request)
        rounds.append((started, time.monotonic()))
        if len(rounds) == 1:
            emit("ready", **summarise(outcomes))
        if stop.done():
            break
    stopped_by_input = stop.done()
    stop.cancel()
    emit(
        "done",
        rounds=len(rounds),
        started=rounds[0][0],
        ended=rounds[-1][1],
        round_seconds=[round(end - start, 4) for start, end in rounds],
        stopped_by_input=stopped_by_input,
        **summarise(outcomes),
    )


# idle


async def open_idle(
    source: str, host: str, port: int, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.open_connection(host, port, local_addr=(source, 0))
    except (OSError, TimeoutError) as error:
        return error_name(error)


async def idle(options: argparse.Namespace) -> None:
    sources = source_addresses(options.first, options.count)
    host, port = options.target_host, options.target_port
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            open_idle(source, host, port, options.timeout)
            for source in sources
            for _ in range(options.per_address)
        )
    )
    streams = [result for result in results if not isinstance(result, str)]
    errors = Counter(result for result in results if isinstance(result, str))
    # A read returns once the server sends anything (an error page), closes
    # or resets the connection, so a read still pending means it is open.
    reads = [asyncio.create_task(reader.read(1)) for reader, _ in streams]
    emit(
        "ready",
        opened=len(streams),
        errors=dict(errors),
        seconds=round(time.monotonic() - started, 4),
    )

    held_from = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stdin_closed(), options.hold_seconds)
    held_until = time.monotonic()

    closed = sum(1 for read in reads if read.done())
    for read in reads:
        read.cancel()
    for _, writer in streams:
        writer.close()
    emit(
        "done",
        opened=len(streams),
        still_open=len(streams) - closed,
        held_seconds=round(held_until - held_from, 3),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("burst", "idle"))
    parser.add_argument("--first", required=True, help="first source IPv4 address")
    parser.add_argument(
        "--count", type=int, required=True, help="number of consecutive addresses"
    )
    parser.add_argument(
        "--per-address", type=int, default=10, help="connections per source address"
    )
    parser.add_argument("--target-host", default="198.51.100.80", help="IP address")
    parser.add_argument("--target-port", type=int, default=80)
    parser.add_argument("--host-header", default="198.51.100.80")
    parser.add_argument("--path", default="/", help="request target")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="timeout of one connection and its request, in seconds",
    )
    parser.add_argument(
        "--max-rounds", type=int, default=20, help="burst: maximum number of rounds"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="burst: no new round starts after this many seconds",
    )
    parser.add_argument(
        "--hold-seconds",
        type=float,
        default=60.0,
        help="idle: maximum time to hold the connections, in seconds",
    )
    options = parser.parse_args(argv)
    raise_file_limit(options.count * options.per_address + SPARE_DESCRIPTORS)
    run = burst if options.mode == "burst" else idle
    asyncio.run(run(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
