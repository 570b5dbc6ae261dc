"""The parts of an HTTP response that detection reads, from any client library.

Responses of requests, httpx, urllib3 and aiohttp are recognised by the
module their type comes from, so none of those libraries is imported here:
a caller that has a response already has its library loaded.

Reading a body is the delicate part. A response whose body is already in
memory is sliced. A streamed body that the caller has not read yet is read up to
MAX_BODY_BYTES and stored back on the response, so that the caller's own
`.content`, `.text` or `.data` still work afterwards. A longer body is cut
at that length and its connection closed, because no portal page needs
more and a hostile network must not make the client buffer without limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Bodies read for detection are cut at this size (64 KiB).
MAX_BODY_BYTES = 64 * 1024

# Statuses whose body detection reads even when no probe expectation is
# given: a 511 names the portal in its body, and WISPr gateways put their
# XML in the body of the redirect.
BODY_STATUSES = frozenset({302, 303, 307, 511})


@dataclass(frozen=True)
class ResponseParts:
    """The parts of a response that detection reads, as plain values.

    body is None when detection did not need it or it was no longer
    available (a stream the caller had already consumed).
    """

    status: int
    request_url: str | None
    location: str | None = None
    link: str | None = None
    body: bytes | None = None


def needs_body(status: int, probing: bool) -> bool:
    """Tell whether detection reads the body of a response with status.

    A 200 body is read only for a probe, whose expected content is known:
    reading every 200 body would defeat callers that stream large downloads.
    """
    return status in BODY_STATUSES or (probing and status == 200)


def library_of(response: Any) -> str:
    """Return the top-level module of response's type, such as "httpx"."""
    return type(response).__module__.split(".", 1)[0]


def header_value(headers: Any, name: str) -> str | None:
    """Return every value of header name joined with ", ", or None if absent.

    Works on the header containers of the supported libraries, on plain
    mappings (compared case-insensitively) and on lists of (name, value).
    """
    for method in ("getall", "get_list", "getlist"):
        # aiohttp's CIMultiDict, httpx.Headers and urllib3's HTTPHeaderDict
        # keep repeated headers apart, and their .get() would drop or merge them.
        getter = getattr(headers, method, None)
        if getter is not None:
            values = getter(name, []) if method == "getall" else getter(name)
            return ", ".join(values) if values else None
    if hasattr(headers, "items"):
        pairs: Iterable[tuple[str, str]] = headers.items()
    else:
        pairs = headers
    target_name = name.lower()
    found = [str(value) for key, value in pairs if str(key).lower() == target_name]
    return ", ".join(found) if found else None


def read_parts(
    response: Any, probing: bool = False, request_url: str | None = None
) -> ResponseParts:
    """Return the ResponseParts of a response, reading its body if needed.

    Raises TypeError for an asynchronous response whose body has not been
    read yet. Use aread_parts for those.
    """
    library = library_of(response)
    status, url, headers = _status_url_headers(response, library)
    body = None
    if needs_body(status, probing):
        body = _read_body(response, library)
    return _parts(status, request_url or url, headers, body)


async def aread_parts(
    response: Any, probing: bool = False, request_url: str | None = None
) -> ResponseParts:
    """Return the ResponseParts of any response, awaiting its body if needed."""
    library = library_of(response)
    status, url, headers = _status_url_headers(response, library)
    body = None
    if needs_body(status, probing):
        if library == "aiohttp":
            body = await _read_aiohttp_body(response)
        elif library.startswith("httpx") and not _httpx_is_sync(response):
            body = await _read_httpx_body_async(response)
        else:
            body = _read_body(response, library)
    return _parts(status, request_url or url, headers, body)


def _parts(
    status: int, request_url: str | None, headers: Any, body: bytes | None
) -> ResponseParts:
    return ResponseParts(
        status=status,
        request_url=request_url,
        location=header_value(headers, "location"),
        link=header_value(headers, "link"),
        body=body,
    )


# Status, URL and headers


def _status_url_headers(response: Any, library: str) -> tuple[int, str | None, Any]:
    if library == "requests":
        return int(response.status_code), response.url, response.headers
    if library.startswith("httpx"):
        try:
            url: str | None = str(response.request.url)
        except RuntimeError:
            # A response built without a request raises on .request.
            url = None
        return int(response.status_code), url, response.headers
    if library == "urllib3":
        return int(response.status), _urllib3_url(response), response.headers
    if library == "aiohttp":
        return int(response.status), str(response.url), response.headers
    return _generic_status_url_headers(response)


def _urllib3_url(response: Any) -> str | None:
    url: str | None = response.url
    pool = getattr(response, "_pool", None)
    if not url or not url.startswith("/") or pool is None:
        return url
    # A pooled response records only the request target, so the scheme,
    # host and port come from the pool that sent it.
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    default_port = 443 if pool.scheme == "https" else 80
    port = "" if pool.port in (None, default_port) else f":{pool.port}"
    return f"{pool.scheme}://{host}{port}{url}"


def _generic_status_url_headers(response: Any) -> tuple[int, str | None, Any]:
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", None)
    if status is None:
        raise TypeError(
            f"cannot read an HTTP status from a {type(response).__name__}: "
            "pass a response of requests, httpx, urllib3 or aiohttp, or an "
            "object with status_code or status, headers and content"
        )
    url = getattr(response, "url", None)
    return int(status), str(url) if url else None, getattr(response, "headers", {})


# Bodies


def _read_body(response: Any, library: str) -> bytes | None:
    if library == "requests":
        return _read_requests_body(response)
    if library.startswith("httpx"):
        return _read_httpx_body(response)
    if library == "urllib3":
        return _read_urllib3_body(response)
    if library == "aiohttp":
        body = response._body
        if body is None:
            raise TypeError(
                "the body of this aiohttp response has not been read; "
                "use `await detect_async(response)` instead of detect()"
            )
        return bytes(body[:MAX_BODY_BYTES])
    return _generic_body(response)


def _read_requests_body(response: Any) -> bytes:
    content = response.__dict__.get("_content", False)
    if content is not False:
        return bytes((content or b"")[:MAX_BODY_BYTES])
    raw = response.raw
    if raw is None:
        return b""
    data = raw.read(MAX_BODY_BYTES + 1, decode_content=True)
    complete = len(data) <= MAX_BODY_BYTES
    # These two attributes are where requests itself keeps a read body, so
    # response.content returns what was read here.
    response._content = data[:MAX_BODY_BYTES]
    response._content_consumed = True
    if not complete:
        response.close()
    return bytes(response._content)


def _httpx_is_sync(response: Any) -> bool:
    # Streams of sync clients are iterable, and those of AsyncClient only
    # asynchronously iterable. A body given as bytes supports both.
    return hasattr(response.stream, "__iter__")


def _read_httpx_body(response: Any) -> bytes | None:
    if "_content" in response.__dict__:
        return bytes(response._content[:MAX_BODY_BYTES])
    if response.is_stream_consumed:
        return None
    if not _httpx_is_sync(response):
        raise TypeError(
            "the body of this httpx.AsyncClient response has not been read; "
            "use `await detect_async(response)` instead of detect()"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    data = b"".join(chunks)
    # httpx keeps a read body in _content, which response.content returns.
    response._content = data[:MAX_BODY_BYTES]
    if size > MAX_BODY_BYTES:
        response.close()
    return bytes(response._content)


async def _read_httpx_body_async(response: Any) -> bytes | None:
    if "_content" in response.__dict__:
        return bytes(response._content[:MAX_BODY_BYTES])
    if response.is_stream_consumed:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    response._content = b"".join(chunks)[:MAX_BODY_BYTES]
    if size > MAX_BODY_BYTES:
        await response.aclose()
    return bytes(response._content)


def _read_urllib3_body(response: Any) -> bytes:
    body = response.__dict__.get("_body")
    if body is not None:
        return bytes(body[:MAX_BODY_BYTES])
    data = response.read(MAX_BODY_BYTES + 1, decode_content=True)
    # urllib3 keeps a cached body in _body, which response.data returns.
    response._body = data[:MAX_BODY_BYTES]
    if len(data) > MAX_BODY_BYTES:
        response.close()
    return bytes(response._body)


async def _read_aiohttp_body(response: Any) -> bytes:
    if response._body is not None:
        return bytes(response._body[:MAX_BODY_BYTES])
    data = b""
    while len(data) <= MAX_BODY_BYTES:
        chunk = await response.content.read(MAX_BODY_BYTES + 1 - len(data))
        if not chunk:
            break
        data += chunk
    # aiohttp keeps a read body in _body, which response.read() and
    # .text() return.
    response._body = data[:MAX_BODY_BYTES]
    if len(data) > MAX_BODY_BYTES:
        response.close()
    return bytes(response._body)


def _generic_body(response: Any) -> bytes | None:
    for name in ("content", "data", "body"):
        value = getattr(response, name, None)
        if isinstance(value, bytes | bytearray):
            return bytes(value[:MAX_BODY_BYTES])
        if isinstance(value, str):
            return value.encode("utf-8", "replace")[:MAX_BODY_BYTES]
    return None
