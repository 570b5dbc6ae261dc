"""The laboratory's upstream web server: what clients reach once online.

Run in the upstream namespace as `python -m capport.lab.origin`. It serves:

- `/`: a small HTML page containing MARKER;
- `/x/...`: the request path echoed back as text/plain;
- the expected responses to the built-in operating-system probes (Apple's
  "Success" page for Host captive.apple.com, a 204 for
  connectivitycheck.gstatic.com, ...), as their real hosts serve them;
- `/bytes/N`: N bytes sent in 64 KiB chunks with a pause after each, so a
  download lasts long enough to be cut off mid-way (`?delay=MS` sets the
  pause in milliseconds, 0 to 1000, default 20);

and accepts plain TCP on port 443, sending one line and closing, so that a
client can test whether the gateway lets a TLS port through without any TLS
being involved.
"""

from __future__ import annotations

import argparse
import logging
import socket
import socketserver
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from capport.probes import DEFAULT_PROBES, ProbeEntry, normalise_host

log = logging.getLogger("capport.lab")

MARKER = "capport-lab-origin: you are online"
PAGE = (
    '<!doctype html>\n<html><head><meta charset="utf-8">'
    "<title>Origin</title></head>\n"
    f"<body><h1>Origin</h1><p>{MARKER}</p></body></html>\n"
)
TCP_GREETING = b"capport-lab origin: plain TCP, no TLS\n"
CHUNK_BYTES = 64 * 1024
DEFAULT_DELAY_MS = 20
MAX_DELAY_MS = 1000
MAX_STREAM_BYTES = 1 << 34

# The probes that have an expected response, by host and path. Windows'
# /redirect has none, because its real host sends a browser to a news page.
PROBE_RESPONSES = {
    (probe.host, probe.path): probe
    for probe in DEFAULT_PROBES
    if probe.status == 204 or probe.body
}


class OriginHandler(BaseHTTPRequestHandler):
    server_version = "capport-lab-origin/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", _peer(self.client_address), format % args)

    def _route(self, send_body: bool) -> None:
        target = urlsplit(self.path)
        host = normalise_host(self.headers.get("Host"))
        probe = PROBE_RESPONSES.get((host or "", target.path))
        if probe is not None:
            self._send_probe_response(probe, send_body)
        elif target.path == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE, send_body)
        elif target.path.startswith("/x/"):
            self._send(
                HTTPStatus.OK,
                "text/plain; charset=utf-8",
                target.path + "\n",
                send_body,
            )
        elif target.path.startswith("/bytes/"):
            self._stream(target.path.removeprefix("/bytes/"), target.query, send_body)
        else:
            self._send(
                HTTPStatus.NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n",
                send_body,
            )

    def _send(
        self, status: HTTPStatus, content_type: str, text: str, send_body: bool
    ) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_probe_response(self, probe: ProbeEntry, send_body: bool) -> None:
        self.send_response(probe.status)
        if probe.status == 204:
            self.end_headers()
            return
        body = probe.success_body
        self.send_header("Content-Type", probe.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _stream(self, size_text: str, query: str, send_body: bool) -> None:
        size = _parse_int(size_text, 0, MAX_STREAM_BYTES)
        delay_values = parse_qs(query).get("delay", [str(DEFAULT_DELAY_MS)])
        delay_ms = _parse_int(delay_values[0], 0, MAX_DELAY_MS)
        if size is None or delay_ms is None:
            self._send(
                HTTPStatus.BAD_REQUEST,
                "text/plain; charset=utf-8",
                f"expected /bytes/N with 0 <= N <= {MAX_STREAM_BYTES} and "
                f"?delay=MS with 0 <= MS <= {MAX_DELAY_MS}\n",
                send_body,
            )
            return

        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not send_body:
            return

        sent = 0
        chunk = b"x" * CHUNK_BYTES
        try:
            while sent < size:
                count = min(CHUNK_BYTES, size - sent)
                self.wfile.write(chunk[:count])
                sent += count
                time.sleep(delay_ms / 1000)
        except OSError as error:
            # The client went away or the gateway cut the connection, as a
            # revocation test expects. The byte count shows when it happened.
            log.info(
                "%s: stream of %d bytes stopped after %d bytes: %s",
                _peer(self.client_address),
                size,
                sent,
                error,
            )
            self.close_connection = True
            return
        log.info("%s: stream of %d bytes complete", _peer(self.client_address), size)


class GreetingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        log.info("%s: TCP connection on the TLS port", _peer(self.client_address))
        try:
            self.request.sendall(TCP_GREETING)
        except OSError as error:
            log.info("%s: TCP greeting failed: %s", _peer(self.client_address), error)


class GreetingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # socketserver listens with a backlog of 5. When many devices come
    # online at once, their first SYNs overflow that queue, and the kernel
    # drops them (TcpExtListenOverflows), so each client waits out its
    # 1 s SYN retransmission timer.
    request_queue_size = 1024


def _set_dual_stack(server: socketserver.TCPServer) -> None:
    # Bound to "::", the socket accepts IPv4 too, as ::ffff:a.b.c.d. The
    # namespace's net.ipv6.bindv6only decides otherwise, so it is set here.
    dual = server.server_address[0] == "::"
    server.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(not dual))


class DualStackHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        _set_dual_stack(self)
        super().server_bind()


class DualStackGreetingServer(GreetingServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        _set_dual_stack(self)
        super().server_bind()


def _peer(address: tuple[str, int] | Any) -> str:
    """Return a client's address as logged: IPv4 clients of "::" without ::ffff:."""
    return str(address[0]).removeprefix("::ffff:")


def _parse_int(text: str, low: int, high: int) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m capport.lab.origin",
        description="Serve the laboratory's origin pages and a plain TCP port.",
    )
    parser.add_argument(
        "--address",
        default="::",
        help="IPv4 or IPv6 address to listen on (default: all of both)",
    )
    parser.add_argument(
        "--http-port", type=int, default=80, help="port of the web server (default: 80)"
    )
    parser.add_argument(
        "--tcp-port",
        type=int,
        default=443,
        help="port that accepts plain TCP (default: 443)",
    )
    options = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    ipv6 = ":" in options.address
    web_class = DualStackHTTPServer if ipv6 else ThreadingHTTPServer
    greeting_class = DualStackGreetingServer if ipv6 else GreetingServer
    web = web_class((options.address, options.http_port), OriginHandler)
    web.daemon_threads = True
    greeting = greeting_class((options.address, options.tcp_port), GreetingHandler)
    threading.Thread(target=greeting.serve_forever, daemon=True).start()

    log.info(
        "Origin listening on %s: HTTP port %d, plain TCP port %d.",
        options.address,
        options.http_port,
        options.tcp_port,
    )
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        log.info("Origin stopped.")


if __name__ == "__main__":
    main()
