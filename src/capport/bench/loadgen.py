"""Load generator for logins and held connections, run in a client namespace.

    python -m capport.bench.loadgen login < request.json
    python -m capport.bench.loadgen hold < request.json

The request names simulated devices (interface, MAC, IP) and the address of
their gateway. Every socket is bound to its device's interface
(SO_BINDTODEVICE), so the gateway receives the device's own MAC and IP
address. The result is one JSON object on the last
line of standard output; `hold` prints an {"event": "opened"} line first,
once every connection is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

# The Accept form's CSRF field, as the splash page renders it.
_CSRF = re.compile(rb'name="csrf" value="([^"]+)"')
_TIMEOUT = 10.0
# Retries of the first upstream connection, 1 ms apart, when the gateway
# rejected it: the number of retries shows how late the grant took effect.
_MAX_ATTEMPTS = 2000


class LoginFailed(Exception):
    """A step of a login returned something other than what a browser expects."""


Address = tuple[str, int]


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Announcer:
    """Sends ARP requests from the devices' interfaces through one packet socket.

    One socket serves every device, because closing a packet socket waits
    for an RCU grace period (milliseconds) and would stall the event loop.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)

    def close(self) -> None:
        self._sock.close()

    def announce(self, device: dict[str, str], gateway: str) -> None:
        self._sock.sendto(arp_request(device, gateway), (device["interface"], 0))


def arp_request(device: dict[str, str], gateway: str) -> bytes:
    """Return the Ethernet frame of an ARP request for gateway from device.

    The devices know the gateway's MAC from a permanent neighbour entry, so
    without this the gateway would learn a device only by broadcasting its
    own ARP request, which every macvlan interface in the namespace
    receives. A host that joins a network sends an ARP request for its
    gateway instead, and the gateway records the sender's MAC from it.
    """
    mac = bytes.fromhex(device["mac"].replace(":", ""))
    ip = socket.inet_aton(device["ip"])
    # Ethernet header, then an ARP request (RFC 826): Ethernet and IPv4
    # address types and sizes, operation 1.
    frame = b"\xff" * 6 + mac + b"\x08\x06"
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    frame += mac + ip + b"\x00" * 6 + socket.inet_aton(gateway)
    return frame


async def _connect(device: dict[str, str], address: Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device["interface"].encode()
        )
        sock.bind((device["ip"], 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, address), _TIMEOUT)
    except BaseException:
        sock.close()
        raise
    return sock


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send one request and read its response, which must carry Content-Length."""
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" not in headers:
        raise LoginFailed(f"response without Content-Length: {status_line!r}")
    length = int(headers[b"content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), _TIMEOUT)
    return int(status_line.split(b" ", 2)[1]), headers, body


# Logins


async def login(
    device: dict[str, str],
    portal: Address,
    upstream: Address,
    announce: Callable[[dict[str, str]], None],
) -> dict[str, Any]:
    """Click through the portal as device, then open a connection upstream.

    Times are from time.perf_counter(). "forwarded" is the time from sending
    the Accept POST until a new TCP connection to the upstream host
    completed its handshake, so the gateway forwarded its first packet.
    """
    host = f"{portal[0]}:{portal[1]}".encode()
    started = time.perf_counter()
    announce(device)
    sock = await _connect(device, portal)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        connected = time.perf_counter()
        splash = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host
        status, _, body = await _exchange(reader, writer, splash)
        token = _CSRF.search(body)
        if status != 200 or token is None:
            raise LoginFailed(
                f"splash page: status {status}, CSRF field found: {bool(token)}"
            )
        form = urlencode({"csrf": token.group(1).decode()}).encode()
        accept = (
            b"POST /accept HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (host, len(form), form)
        )
        posted = time.perf_counter()
        status, headers, _ = await _exchange(reader, writer, accept)
        answered = time.perf_counter()
        if status != 303:
            raise LoginFailed(f"Accept: expected 303, got {status}")
    finally:
        writer.close()
    attempts = await _reach(device, upstream)
    forwarded = time.perf_counter()
    return {
        "started": started,
        "connected": connected,
        "posted": posted,
        "answered": answered,
        "forwarded": forwarded,
        "attempts": attempts,
    }


async def _reach(device: dict[str, str], upstream: Address) -> int:
    """Connect to upstream until the gateway forwards; return the attempts."""
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            sock = await _connect(device, upstream)
        except (ConnectionRefusedError, OSError):
            # A captive device's TCP is reset by the gateway at once.
            await asyncio.sleep(0.001)
            continue
        sock.close()
        return attempt
    raise LoginFailed(f"{upstream[0]}:{upstream[1]} still rejected after login")


async def run_logins(request: dict[str, Any]) -> dict[str, Any]:
    portal = _address(request["portal"])
    upstream = _address(request["upstream"])
    limit = asyncio.Semaphore(int(request["concurrency"]))
    announcer = Announcer()

    def announce(device: dict[str, str]) -> None:
        announcer.announce(device, request["gateway"])

    async def one(device: dict[str, str]) -> dict[str, Any]:
        async with limit:
            try:
                return await login(device, portal, upstream, announce)
            except (TimeoutError, LoginFailed, OSError, ValueError) as error:
                return {"error": f"{device['interface']}: {error!r}"}

    started = time.perf_counter()
    try:
        logins = await asyncio.gather(*(one(device) for device in request["devices"]))
    finally:
        announcer.close()
    return {"logins": logins, "seconds": time.perf_counter() - started}


# Held connections


async def hold(request: dict[str, Any]) -> dict[str, Any]:
    """Open connections that send no request or a request that never ends.

    A slow_fraction of them send a request head that stops in the middle of
    a header line, then add one byte a second. The rest stay idle. All are
    kept open for hold_seconds, and those the server closes are counted.
    """
    target = _address(request["target"])
    per_device = int(request["per_device"])
    slow_every = _every(float(request["slow_fraction"]))
    partial = b"GET / HTTP/1.1\r\nHost: origin.lab\r\nX-Padding: " + b"a" * int(
        request["partial_header_bytes"]
    )
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]] = []
    failures: list[str] = []
    limit = asyncio.Semaphore(64)

    async def open_one(device: dict[str, str], slow: bool) -> None:
        async with limit:
            try:
                sock = await _connect(device, target)
                reader, writer = await asyncio.open_connection(sock=sock)
            except (TimeoutError, OSError) as error:
                failures.append(repr(error))
                return
            if slow:
                writer.write(partial)
            connections.append((reader, writer, slow))

    announcer = Announcer()
    for device in request["devices"]:
        announcer.announce(device, request["gateway"])
    announcer.close()
    started = time.perf_counter()
    jobs: list[Coroutine[Any, Any, None]] = []
    for device in request["devices"]:
        for _ in range(per_device):
            jobs.append(open_one(device, slow_every(len(jobs))))
    await asyncio.gather(*jobs)
    opened = time.perf_counter() - started
    print(json.dumps({"event": "opened", "count": len(connections)}), flush=True)
    closed_at = await _keep_open(connections, float(request["hold_seconds"]))
    for _, writer, _ in connections:
        writer.close()
    return {
        "opened": len(connections),
        "slow": sum(1 for _, _, slow in connections if slow),
        "failed": len(failures),
        "failures": failures[:5],
        "open_seconds": opened,
        "closed_by_server": len(closed_at),
    }


def _every(fraction: float) -> Any:
    """Return a function telling whether connection number n is a slow one."""
    if fraction <= 0:
        return lambda n: False
    step = max(1, round(1 / fraction))
    return lambda n: n % step == 0


async def _keep_open(
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]],
    seconds: float,
) -> list[float]:
    """Trickle bytes on the slow connections; return when each one closed."""
    closed: list[float] = []
    deadline = time.perf_counter() + seconds

    async def watch(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            await reader.read(65536)
        closed.append(time.perf_counter())

    watchers = [asyncio.create_task(watch(reader)) for reader, _, _ in connections]
    while time.perf_counter() < deadline:
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.perf_counter())))
        for _, writer, slow in connections:
            if slow and not writer.is_closing():
                writer.write(b"a")
    for watcher in watchers:
        watcher.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    return closed


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    request = json.loads(sys.stdin.read())
    # Thousands of sockets need more descriptors than the usual soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if mode == "login":
        result = asyncio.run(run_logins(request))
    elif mode == "hold":
        result = asyncio.run(hold(request))
    else:
        usage = "usage: python -m capport.bench.loadgen login|hold < request.json"
        sys.exit(f"{usage} (got {mode!r})")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
