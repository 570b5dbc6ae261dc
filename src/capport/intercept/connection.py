"""One intercepted TCP connection: parsing, limits and responses.

Requests are parsed with httptools (llhttp) and get their responses from
the parser's callbacks, so pipelined requests get responses in order. Every
limit ends the connection with a status code rather than an exception,
because the service must keep running whatever a device sends.

This is the responder's hot path, measured against nginx, so the common case
(a complete request in one read, whose response is in the cache) runs as
few Python calls as possible.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from ipaddress import IPv6Address
from typing import TYPE_CHECKING, Any, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from capport.intercept.actions import Action, classify
from capport.intercept.destination import original_destination, socket_address_ip
from capport.intercept.request import format_authority, parse_request
from capport.intercept.responses import CONTINUE
from capport.models import IPAddress

if TYPE_CHECKING:
    from capport.intercept.server import Responder

log = logging.getLogger("capport.intercept")

# Input is parsed in slices of this size, and the responses to one slice are
# written before the next is parsed. A client that pipelines requests but
# never reads the responses therefore gets at most one slice's worth of
# responses queued past the transport's high-water mark before reading stops.
FEED_SLICE_BYTES = 4096

# A connection being closed gets this long to send its last responses. If
# input may still be arriving (after an error, or after a request that ended
# the connection) it is half-closed and that input is read and discarded
# meanwhile: closing a socket with unread input makes Linux send a reset,
# which can destroy the response before the client reads it (RFC 9112
# section 9.6, "lingering close").
LINGER_SECONDS = 2.0

# Input that arrives while reading is paused is kept up to this size. Reading
# stops as soon as the write buffer is full, so this only catches a transport
# that keeps delivering after pause_reading().
MAX_PENDING_INPUT_BYTES = 1 << 20

# A read of at most this many bytes that held exactly one request is cached
# with its response, so the same bytes later skip parsing.
MAX_REUSED_REQUEST_BYTES = 2048

# A Content-Length with more digits than this is over any body limit, and
# int() raises ValueError beyond 4300 digits (Python 3.11 and later).
_MAX_LENGTH_DIGITS = 18


class _StopParsing(Exception):
    """Raised inside a parser callback to stop parsing this connection."""


class InterceptConnection(asyncio.Protocol):
    """Responds to the HTTP requests of one redirected connection."""

    deadline: float
    client_ip: IPAddress
    client_key: str

    def __init__(self, responder: Responder) -> None:
        self._responder = responder
        self._limits = responder.limits
        self._builder = responder.builder
        self._cache = responder.response_cache
        self._is_authorised = responder.is_authorised
        self._has_session = responder.has_session
        self._address_epoch = responder.address_epoch
        # The address epoch at which the client was seen without a session,
        # or -1: until the epoch moves on it cannot have been authorised.
        self._captive_epoch = -1
        self._probes = responder.probes
        self._agent_hosts = responder.probes.agent_dependent_hosts
        self._stats = responder.stats
        self._parser = HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._now = asyncio.get_running_loop().time
        self.deadline = self._now() + self._limits.header_timeout
        self._keepalive_timeout = self._limits.keepalive_timeout
        self._destination: str | None = None

        # Input and output
        self._output: list[bytes] = []
        self._pending_input = b""
        self._write_paused = False
        self._completed_in_read = 0
        self._reusable_response: bytes | None = None

        # The connection's state
        self._idle = False
        self._closing = False
        self._close_started = False
        self._unread_input = False
        self._stop_status: int | None = None

        # The request being parsed; _reset_request() resets these.
        self._in_message = False
        self._in_head = True
        self._raw_head_bytes = 0
        self._head_bytes = 0
        self._body_bytes = 0
        self._target = b""
        self._host: bytes | None = None
        self._user_agent: bytes | None = None
        self._expect_continue = False
        self._method = b""
        self._keep_alive = True
        self._http10 = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        # The address as the socket reports it: a cheap, stable key for
        # counting the connections of one client.
        self.client_key = peername[0]
        self.client_ip = self._responder.client_ip(peername)
        if isinstance(self.client_ip, IPv6Address):
            self._builder = self._responder.builder6
            self._cache = self._responder.response_cache6
        if not self._responder.admit(self):
            self._transport.write(self._builder.error(503))
            self._transport.close()
            self._transport = None

    def data_received(self, data: bytes | memoryview) -> None:
        if (
            len(data) <= MAX_REUSED_REQUEST_BYTES
            and not (self._in_message or self._closing or self._write_paused)
            and (cached := self._cache.get(data)) is not None
            and (
                self._captive_epoch == self._address_epoch.value
                or self._still_captive()
            )
        ):
            self._reuse(cached)
            return
        if self._closing or self._write_paused:
            self._hold(data)
            return
        if self._idle:
            # A new request has started: its head must arrive in time.
            self._idle = False
            self.deadline = self._now() + self._limits.header_timeout
        if len(data) > FEED_SLICE_BYTES:
            self._feed_slices(data)
            return
        at_boundary = not self._in_message
        self._feed(data)
        if (
            at_boundary
            and self._completed_in_read == 1
            and self._reusable_response is not None
            and not self._in_message
            and not self._closing
            and type(data) is bytes
            and len(data) <= MAX_REUSED_REQUEST_BYTES
        ):
            # This read held exactly one whole request and nothing else, so
            # the parser is back where it started and the same bytes would
            # give the same callbacks and the same response again.
            self._responder.cache_response(data, self._reusable_response, self._cache)

    def eof_received(self) -> bool:
        # Complete requests got their responses as they arrived, so a client
        # that half-closes has had all of them. Returning False closes the
        # transport once the buffered responses are written.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._output.clear()
        self._pending_input = b""
        self._responder.release(self)

    def pause_writing(self) -> None:
        # The client is not reading its responses, so stop reading its
        # requests until it does and neither buffer grows.
        self._write_paused = True
        if self._transport is not None and not self._closing:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._transport is None or self._closing:
            return
        self._transport.resume_reading()
        pending, self._pending_input = self._pending_input, b""
        if pending:
            self.data_received(pending)

    def abort(self) -> None:
        """Close the connection at once, dropping unsent responses."""
        if self._transport is not None:
            self._transport.abort()

    # Deadlines, enforced by the responder's periodic sweep

    def time_out(self) -> None:
        """End the connection because its deadline has passed."""
        transport = self._transport
        if transport is None:
            return
        if self._close_started:
            transport.abort()
            return
        if not self._in_head or self._raw_head_bytes:
            # Part of a request arrived but not all of it in time. RFC 9110
            # section 15.5.9 lets the server send 408 before closing.
            self._stats.timeouts += 1
            self._reject(408)
        elif not self._idle:
            # No request started before the header timeout: closed without a
            # response, but counted. An idle keep-alive wait that ends is not.
            self._stats.timeouts += 1
        self._closing = True
        self._flush()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._in_message = True
        if self._closing:
            self._unread_input = True

    def on_url(self, url: bytes) -> None:
        # llhttp reports a target split across reads in several pieces.
        self._target += url
        self._head_bytes += len(url)
        if len(self._target) > self._limits.max_target_bytes:
            self._stop(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._limits.max_header_bytes:
            self._stop(431)
        size = len(name)
        if size == 4 and name.lower() == b"host":
            if self._host is not None:
                # RFC 9112 section 3.2: more than one Host header gets 400.
                self._stop(400)
            self._host = value
        elif size == 14 and name.lower() == b"content-length":
            if (
                len(value) > _MAX_LENGTH_DIGITS
                or int(value) > self._limits.max_body_bytes
            ):
                self._stop(413)
        elif size == 10 and name.lower() == b"user-agent":
            self._user_agent = value
        elif size == 6 and name.lower() == b"expect":
            self._expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        self._method = parser.get_method()
        self._keep_alive = parser.should_keep_alive() and not parser.should_upgrade()
        version = parser.get_http_version()
        self._http10 = version != "1.1"
        if self._host is None or self._expect_continue:
            self._check_version(version)

    def on_body(self, body: bytes) -> None:
        # The body is counted and dropped, because no response depends on it.
        self._body_bytes += len(body)
        if self._body_bytes > self._limits.max_body_bytes:
            self._stop(413)

    def on_message_complete(self) -> None:
        if self._closing:
            # A request pipelined after one whose response closes the connection.
            return
        self._stats.requests += 1
        keep_alive = self._keep_alive
        authorised = self._is_authorised(self.client_ip)
        # NOTE: a cached response is reused for every request with the same
        # key, so the key must hold every value that classify() and the
        # builder read. A request without Host depends on the connection's
        # destination as well and is never cached, and neither is a request
        # to a host whose probe answer depends on the User-Agent.
        key = None
        response = None
        if (
            self._host
            and not authorised
            and self._host.partition(b":")[0].lower() not in self._agent_hosts
        ):
            key = (self._method, self._target, self._host, keep_alive, self._http10)
            response = self._cache.get(key)
        if response is None:
            response, keep_alive = self._build_response(authorised, key)
            cached = key is not None and self._cache.get(key) is response
        else:
            self._stats.captive_responses += 1
            cached = True
        self._output.append(response)

        self._completed_in_read += 1
        if cached and keep_alive and not self._expect_continue:
            self._reusable_response = response
        else:
            self._reusable_response = None
        self._reset_request()
        if keep_alive:
            self._idle = True
            self.deadline = self._now() + self._limits.keepalive_timeout
        else:
            self._closing = True

    def _reset_request(self) -> None:
        self._in_message = False
        self._in_head = True
        self._raw_head_bytes = 0
        self._head_bytes = 0
        self._body_bytes = 0
        self._target = b""
        self._host = None
        self._user_agent = None
        self._expect_continue = False

    # Parsing

    def _feed(self, data: bytes | memoryview) -> None:
        self._completed_in_read = 0
        self._reusable_response = None
        # The parser keeps a header line in memory until the line ends, so
        # bytes are also counted here. The precise count in on_header runs
        # only once a line is complete.
        if self._in_head:
            self._raw_head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            # The upgrade request got a response with "Connection: close".
            # What follows it is another protocol and stays unread.
            self._unread_input = True
        except HttpParserCallbackError as error:
            self._on_callback_error(error)
        except HttpParserError as error:
            if self._closing:
                # Input after a request that ended the connection.
                self._unread_input = True
            else:
                log.debug("Rejected input from %s: %s", self.client_ip, error)
                self._reject(400)
        else:
            if self._in_head and self._raw_head_bytes > self._limits.max_header_bytes:
                self._reject(431)
        self._flush()

    def _still_captive(self) -> bool:
        """Tell whether the client is not authorised; remember a result that lasts."""
        epoch = self._address_epoch.value
        if self._is_authorised(self.client_ip):
            return False
        if not self._has_session(self.client_ip):
            self._captive_epoch = epoch
        return True

    def _reuse(self, response: bytes) -> None:
        """Send a response remembered for the same request bytes.

        The request was whole in one read, so the connection goes straight
        from one idle wait to the next.
        """
        stats = self._stats
        stats.requests += 1
        stats.captive_responses += 1
        self._idle = True
        self.deadline = self._now() + self._keepalive_timeout
        transport = self._transport
        if transport is not None:
            transport.write(response)

    def _feed_slices(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for offset in range(0, len(view), FEED_SLICE_BYTES):
            if self._closing:
                return
            if self._write_paused:
                self._pending_input = bytes(view[offset:])
                return
            self.data_received(view[offset : offset + FEED_SLICE_BYTES])

    def _hold(self, data: bytes | memoryview) -> None:
        if self._closing or self._transport is None:
            # A lingering close reads input only to discard it.
            return
        self._pending_input += data
        if len(self._pending_input) > MAX_PENDING_INPUT_BYTES:
            self._transport.abort()

    def _check_version(self, version: str) -> None:
        if version != "1.1":
            return
        if self._host is None:
            # RFC 9112 section 3.2: an HTTP/1.1 request without Host gets
            # 400. HTTP/1.0 clients may leave it out.
            self._stop(400)
        if self._expect_continue:
            self._output.append(CONTINUE)

    def _stop(self, status: int) -> None:
        self._stop_status = status
        raise _StopParsing

    def _on_callback_error(self, error: HttpParserCallbackError) -> None:
        status, self._stop_status = self._stop_status, None
        if status is not None:
            log.debug("Rejected a request from %s with %d.", self.client_ip, status)
            self._reject(status)
        elif not self._closing:
            cause = error.__context__ or error
            self._responder.report_error(cause, self.client_ip)
            self._reject(500)

    def _reject(self, status: int) -> None:
        self._stats.errors += 1
        self._output.append(self._builder.error(status, self._is_head_request()))
        self._closing = True
        # The rest of the rejected request may still be on its way.
        self._unread_input = True

    def _is_head_request(self) -> bool:
        # The parser has a method only once the request line reached the
        # target. Before that, get_method() returns llhttp's default.
        return bool(self._target) and self._parser.get_method() == b"HEAD"

    # Building responses

    def _build_response(
        self, authorised: bool, cache_key: Hashable | None
    ) -> tuple[bytes, bool]:
        """Build the response to the request just parsed, when none is cached.

        Returns the response and whether the connection stays open for
        another request. A 511 is cached under cache_key when one is given.
        """
        request = parse_request(
            self._method,
            self._target,
            self._host,
            self.client_ip,
            self._keep_alive,
            self._original_destination,
            self._user_agent,
            self._http10,
        )
        probe = self._probes.match(request.host, request.target, request.user_agent)
        action = classify(request, authorised, probe)
        response = self._builder.build(request, action, probe)
        if action is Action.CAPTIVE or action is Action.PROBE_REDIRECT:
            self._stats.captive_responses += 1
            if cache_key is not None:
                self._responder.cache_response(cache_key, response, self._cache)
        elif action is Action.RETURN:
            self._stats.redirects += 1
        return response, request.keep_alive and not action.closes_connection

    def _original_destination(self) -> str:
        if self._destination is None:
            self._destination = self._find_destination()
        return self._destination

    def _find_destination(self) -> str:
        transport = self._transport
        assert transport is not None
        sockname: Any = transport.get_extra_info("sockname")
        local_ip = socket_address_ip(sockname)
        sock = transport.get_extra_info("socket")
        found = original_destination(sock, local_ip) if sock is not None else None
        if found is None:
            return format_authority(local_ip, sockname[1])
        return format_authority(*found)

    # Writing and closing

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        output = self._output
        if output:
            transport.write(output[0] if len(output) == 1 else b"".join(output))
            output.clear()
        if self._closing and not self._close_started:
            self._close_started = True
            self._close(transport)

    def _close(self, transport: asyncio.Transport) -> None:
        # Sending the queued responses may take a while if the client reads
        # slowly; the sweep aborts the connection once this deadline passes.
        self.deadline = self._now() + LINGER_SECONDS
        if not self._unread_input or not transport.can_write_eof():
            transport.close()
            return
        # Lingering close: half-close and discard input until the client
        # closes too or the deadline passes.
        transport.write_eof()
        if self._write_paused:
            transport.resume_reading()
