"""Client-side helpers for tests that drive the whole gateway in the laboratory.

HTTP goes through curl run with `ip netns exec` in a client namespace, so
name resolution uses that client's own hosts file. Raw TCP and UDP use
sockets that this process creates inside the client's namespace (they stay
bound to it), which lets a test time a refusal or a stalled download to the
millisecond. The gateway is inspected through its control socket, `nft` in
its namespace and a read-only connection to its SQLite store.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import httpx
from netns import Namespace, wait_until

from capport.lab import Lab
from capport.lab.demo import CurlFetch, parse_curl_output
from capport.lab.flow import (
    Form,
    Response,
    check_captive_response,
    check_splash_page,
    flow_succeeded,
    parse_page,
    run_login_flow,
)
from capport.lab.origin import MARKER
from capport.lab.topology import (
    GATEWAY_LAN_ADDRESS,
    ORIGIN_HOST,
    ORIGIN_URL,
    PORTAL_HOST,
    UPSTREAM_ADDRESS,
)

PORTAL_HOSTS = frozenset({GATEWAY_LAN_ADDRESS, PORTAL_HOST})
PORTAL_URL = f"http://{GATEWAY_LAN_ADDRESS}/"
CURL_SECONDS = 5.0

# curl's exit status for "Failed to connect to host" (CURLE_COULDNT_CONNECT).
CURL_COULDNT_CONNECT = 7


# HTTP with curl


class CurlFailed(OSError):
    """curl exited with a non-zero status (connection refused, timed out, ...)."""

    def __init__(self, exit_status: int, stderr: str) -> None:
        super().__init__(f"curl exited with status {exit_status}: {stderr}")
        self.exit_status = exit_status


def curl(
    lab: Lab,
    role: str,
    url: str,
    *,
    method: str | None = None,
    form: Mapping[str, str] | None = None,
    headers: Sequence[str] = (),
    max_time: float = CURL_SECONDS,
) -> Response:
    """Send one request with curl from role's namespace; redirects are not followed.

    method defaults to POST with a form and GET without one. form is sent
    URL-encoded as the body. headers are curl -H arguments such as
    "Origin: http://evil.example". Raises CurlFailed when curl gets no HTTP
    response.
    """
    argv = ["curl", "-sS", "--include", "--max-time", f"{max_time:g}"]
    for header in headers:
        argv += ["--header", header]
    if form is not None:
        # --data-raw gives "@" no special meaning, unlike --data.
        argv += ["--data-raw", urlencode(dict(form))]
    if method is not None:
        argv += ["--request", method]
    # Bytes rather than text mode, which would turn the CRLF that ends the
    # header block into LF.
    result = subprocess.run(
        lab.exec_argv(role, [*argv, url]),
        capture_output=True,
        timeout=max_time + 5,
        check=False,
    )
    if result.returncode != 0:
        raise CurlFailed(result.returncode, result.stderr.decode(errors="replace"))
    return parse_curl_output(result.stdout.decode("utf-8", errors="replace"))


def header_names(response: Response) -> set[str]:
    """Return the lower-case names of the response's headers."""
    return {name.lower() for name, _ in response.headers}


def is_online(lab: Lab, role: str) -> bool:
    """Tell whether role gets the origin's own page."""
    response = curl(lab, role, ORIGIN_URL)
    return response.status == 200 and MARKER in response.body


def is_captive(lab: Lab, role: str) -> bool:
    """Tell whether role's plain HTTP request to the origin gets a 511."""
    return curl(lab, role, ORIGIN_URL).status == 511


# The portal, step by step


@dataclass(frozen=True)
class Splash:
    """The portal page a 511 led to, and its Accept form."""

    portal_url: str
    response: Response
    form: Form


def open_splash(lab: Lab, role: str, url: str = ORIGIN_URL) -> Splash:
    """GET url (a 511), follow its meta refresh and return the splash page."""
    captive = curl(lab, role, url)
    ok, detail, portal_url = check_captive_response(captive, url, PORTAL_HOSTS)
    assert ok and portal_url is not None, detail
    response = curl(lab, role, portal_url)
    ok, detail, form = check_splash_page(response, portal_url)
    assert ok and form is not None, detail
    return Splash(portal_url, response, form)


def post_form(
    lab: Lab, role: str, form: Form, headers: Sequence[str] = (), **changes: str
) -> Response:
    """POST form's fields with changes applied, as a browser submitting it would."""
    return curl(
        lab, role, form.action, form={**form.fields, **changes}, headers=headers
    )


def status_page(lab: Lab, role: str) -> Response:
    return curl(lab, role, urljoin(PORTAL_URL, "/status"))


def status_form(lab: Lab, role: str) -> Form:
    """Return the sign-out form of role's status page; role must be signed in."""
    url = urljoin(PORTAL_URL, "/status")
    response = curl(lab, role, url)
    _, _, forms = parse_page(response.body, url)
    assert forms, f"status page has no sign-out form: {response.body[:300]!r}"
    return forms[0]


def log_in(lab: Lab, role: str, url: str = ORIGIN_URL) -> None:
    """Click through the real portal from url with curl; fail if a step fails."""
    results = run_login_flow(CurlFetch(lab, role), url, MARKER, PORTAL_HOSTS)
    steps = "; ".join(f"{step.name}: {step.detail}" for step in results)
    assert flow_succeeded(results), steps


@contextmanager
def signed_in(lab: Lab, role: str) -> Iterator[None]:
    """Log role in for the block and revoke its access afterwards."""
    log_in(lab, role)
    try:
        yield
    finally:
        revoke_quietly(lab, lab.macs[role])


# The control socket and the command line


def revoke_quietly(lab: Lab, mac: str) -> None:
    """End mac's access if it has any; for clean-up after a test.

    The request goes to the control API directly, because ControlClient
    has no way to close its connection and pytest would report the
    unclosed socket.
    """
    transport = httpx.HTTPTransport(uds=str(lab.control_socket))
    with httpx.Client(transport=transport, timeout=5.0) as client:
        response = client.delete(f"http://capport/v1/clients/{mac}")
    assert response.status_code in (200, 404), response.text


def capport(
    *args: str, columns: int | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run the capport command line in this process's namespace.

    columns sets the terminal width that Rich lays tables out for.
    """
    environment = dict(os.environ)
    if columns is not None:
        environment["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "capport", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def clients_json(lab: Lab) -> list[dict[str, object]]:
    """Return `capport clients --json` of the running gateway."""
    result = capport("clients", "--socket", str(lab.control_socket), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


# The gateway's kernel set and store


def kernel_elements(lab: Lab, table: str = "capport") -> dict[tuple[str, str], int]:
    """Return the elements of the allowed4 set as (MAC, IP) -> seconds left."""
    result = lab.run(
        "gw", ["nft", "-j", "list", "set", "inet", table, "allowed4"], check=True
    )
    elements: dict[tuple[str, str], int] = {}
    for item in json.loads(result.stdout)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            details = element["elem"]
            mac, ip = details["val"]["concat"]
            elements[(mac, ip)] = int(details.get("expires", -1))
    return elements


def store_sessions(lab: Lab) -> dict[tuple[str, str], float]:
    """Return the store's active sessions as (MAC, IP) -> expiry (Unix time).

    The database is opened read-only, so the test cannot change it.
    """
    uri = f"file:{lab.store_path}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT mac, ip, expires_at FROM sessions WHERE ended_at IS NULL"
        ).fetchall()
    db.close()
    return {(mac, ip): expires_at for mac, ip, expires_at in rows}


def log_text(lab: Lab) -> str:
    return lab.log_path.read_text(errors="replace")


def wait_for_log(lab: Lab, text: str, timeout: float = 5.0) -> bool:
    """Wait until the gateway's log contains text."""
    return wait_until(lambda: text in log_text(lab), timeout)


# Sockets in a client's namespace


@contextmanager
def inside(lab: Lab, role: str) -> Iterator[None]:
    """Run the block with this thread in role's namespace; sockets stay there."""
    with Namespace(lab.namespace(role)).entered():
        yield


def connect(
    lab: Lab,
    role: str,
    port: int,
    address: str = UPSTREAM_ADDRESS,
    timeout: float = 3.0,
) -> socket.socket:
    """Open a TCP connection from role; raises what connect raises."""
    with inside(lab, role):
        return socket.create_connection((address, port), timeout=timeout)


@dataclass
class RawReply:
    """What came back on a connection after a raw request."""

    data: bytes
    closed: bool

    @property
    def status(self) -> int:
        """The status code of the first response line."""
        line = self.data.split(b"\r\n", 1)[0]
        return int(line.split(b" ")[1])

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]


def exchange(
    lab: Lab,
    role: str,
    request: bytes,
    address: str = UPSTREAM_ADDRESS,
    port: int = 80,
    timeout: float = 3.0,
) -> RawReply:
    """Send request bytes and read until the peer closes or timeout passes."""
    with connect(lab, role, port, address, timeout) as sock:
        # The server may respond and close before a large request is sent.
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return _read_until_closed(sock, timeout)


def _read_until_closed(sock: socket.socket, timeout: float) -> RawReply:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return RawReply(b"".join(chunks), closed=False)
        except ConnectionResetError:
            return RawReply(b"".join(chunks), closed=True)
        if not chunk:
            return RawReply(b"".join(chunks), closed=True)
        chunks.append(chunk)


def http_get(host: str, target: str, extra: str = "") -> bytes:
    """Build a GET request with Host, extra header lines and Connection: close."""
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    ).encode("latin-1")


# A download that a test can watch


@dataclass
class Download:
    """A slow download from the origin, read in a thread in a client namespace.

    samples records (monotonic time, total bytes) after every read, so a
    test can tell when bytes stopped arriving. error is what ended the
    read loop, if anything did.
    """

    lab: Lab
    role: str
    size: int = 1 << 30
    delay_ms: int = 20
    samples: list[tuple[float, int]] = field(default_factory=list)
    error: OSError | None = None
    finished: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        sock = connect(self.lab, self.role, 80)
        request = http_get(ORIGIN_HOST, f"/bytes/{self.size}?delay={self.delay_ms}")
        sock.sendall(request)
        self._thread = threading.Thread(target=self._read, args=(sock,), daemon=True)
        self._thread.start()

    def _read(self, sock: socket.socket) -> None:
        total = 0
        sock.settimeout(0.2)
        with sock:
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as error:
                    self.error = error
                    return
                if not chunk:
                    self.finished = True
                    return
                total += len(chunk)
                self.samples.append((time.monotonic(), total))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def total(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    @property
    def last_read_at(self) -> float:
        """The monotonic time of the last read that returned bytes."""
        return self.samples[-1][0] if self.samples else 0.0

    def bytes_at(self, moment: float) -> int:
        """Return how many bytes had arrived by monotonic time moment."""
        total = 0
        for when, count in self.samples:
            if when > moment:
                break
            total = count
        return total

    def wait_for_bytes(self, count: int, timeout: float = 5.0) -> bool:
        return wait_until(lambda: self.total >= count, timeout)


@contextmanager
def downloading(lab: Lab, role: str, delay_ms: int = 20) -> Iterator[Download]:
    """Run a Download for the block and stop its thread afterwards."""
    download = Download(lab, role, delay_ms=delay_ms)
    download.start()
    try:
        yield download
    finally:
        download.stop()


# Refused traffic

# <linux/in.h> and <linux/errqueue.h>: with IP_RECVERR, an ICMP error is
# queued as struct sock_extended_err, which starts with ee_errno, ee_origin,
# ee_type and ee_code.
IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2


@dataclass(frozen=True)
class UdpRefusal:
    """How a UDP datagram to the upstream host was refused."""

    errno: int
    seconds: float
    icmp_type: int
    icmp_code: int


def send_udp(lab: Lab, role: str, port: int = 9, timeout: float = 2.0) -> UdpRefusal:
    """Send one datagram to the upstream host and return the error it caused.

    Raises AssertionError when no error arrives within timeout, or when a
    reply arrives.
    """
    with inside(lab, role):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        sock.settimeout(timeout)
        sock.connect((UPSTREAM_ADDRESS, port))
        started = time.monotonic()
        sock.send(b"captive?")
        try:
            reply = sock.recv(512)
        except TimeoutError:
            raise AssertionError(f"no error within {timeout} s") from None
        except OSError as error:
            seconds = time.monotonic() - started
            assert error.errno is not None
            icmp_type, icmp_code = _queued_icmp_error(sock)
            return UdpRefusal(error.errno, seconds, icmp_type, icmp_code)
        raise AssertionError(f"the datagram got a reply: {reply!r}")


def _queued_icmp_error(sock: socket.socket) -> tuple[int, int]:
    _, ancillary, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for level, kind, data in ancillary:
        if level == socket.SOL_IP and kind == IP_RECVERR:
            _, origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", data)
            assert origin == SO_EE_ORIGIN_ICMP, f"error origin {origin}, not ICMP"
            return icmp_type, icmp_code
    raise AssertionError(f"no ICMP error in the error queue: {ancillary!r}")
