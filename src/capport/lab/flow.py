"""The click-through login as a client sees it, checked step by step.

The steps are the same whatever client performs them: a Fetch callable does
the HTTP (curl in a namespace, urllib in a subprocess), and this module
decides what each response should have been. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

# The number of steps in run_login_flow when none fails.
STEP_COUNT = 4

T = TypeVar("T")
Check = tuple[bool, str, T | None]


@dataclass(frozen=True)
class Response:
    """An HTTP response as a client received it, redirects not followed."""

    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        """Return the first value of header name, compared case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class Fetch(Protocol):
    def __call__(
        self, method: str, url: str, form: dict[str, str] | None = None
    ) -> Response:
        """Send one request without following redirects; POST form URL-encoded."""
        ...


@dataclass(frozen=True)
class StepResult:
    """One step of the flow: what was requested, what was seen, how long it took."""

    name: str
    request: str
    ok: bool
    detail: str
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "request": self.request,
            "ok": self.ok,
            "detail": self.detail,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> StepResult:
        return cls(
            name=str(data["name"]),
            request=str(data["request"]),
            ok=bool(data["ok"]),
            detail=str(data["detail"]),
            seconds=float(str(data["seconds"])),
        )


# Reading pages


@dataclass
class Form:
    """A form on a page: where it posts and the fields a browser would send."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refresh_url: str | None = None
        self.links: list[str] = []
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.refresh_url = self.refresh_url or _refresh_target(
                values.get("content", "")
            )
        elif tag == "a" and "href" in values:
            self.links.append(values["href"])
        elif tag == "form":
            method = values.get("method", "get").lower()
            self.forms.append(Form(values.get("action", ""), method))
        elif tag in ("input", "button") and self.forms:
            self._add_field(tag, values)

    def _add_field(self, tag: str, values: dict[str, str]) -> None:
        name = values.get("name")
        kind = values.get("type", "text" if tag == "input" else "submit").lower()
        # A browser sends hidden inputs, and the name of the button pressed;
        # the flow presses the first submit button.
        if name and kind in ("hidden", "submit"):
            self.forms[-1].fields.setdefault(name, values.get("value", ""))


def _refresh_target(content: str) -> str | None:
    """Return the URL of a refresh content value such as `0; url=/portal`."""
    _, separator, rest = content.partition(";")
    if not separator:
        return None
    key, equals, url = rest.strip().partition("=")
    if not equals or key.strip().lower() != "url":
        return None
    return url.strip().strip("'\"") or None


def parse_page(body: str, base_url: str) -> tuple[str | None, list[str], list[Form]]:
    """Return the meta refresh URL, the links and the forms of an HTML page.

    URLs come back absolute, resolved against base_url.
    """
    parser = _PageParser()
    parser.feed(body)
    parser.close()
    # HTMLParser has already decoded character references in attribute
    # values, so `&amp;` in an href arrives here as `&`.
    refresh = urljoin(base_url, parser.refresh_url) if parser.refresh_url else None
    links = [urljoin(base_url, link) for link in parser.links]
    for form in parser.forms:
        form.action = urljoin(base_url, form.action)
    return refresh, links, parser.forms


# The flow


class _Recorder:
    """Times each request, applies its check and reports the result."""

    def __init__(
        self,
        fetch: Fetch,
        on_step: Callable[[StepResult], None],
        clock: Callable[[], float],
    ) -> None:
        self.results: list[StepResult] = []
        self._fetch = fetch
        self._on_step = on_step
        self._clock = clock

    def step(
        self,
        name: str,
        method: str,
        url: str,
        form: dict[str, str] | None,
        check: Callable[[Response], Check[T]],
    ) -> T | None:
        """Send one request and check it; return what the check found, if it passed."""
        started = self._clock()
        try:
            response = self._fetch(method, url, form)
        except OSError as error:
            ok, detail, value = False, f"request failed: {error}", None
        else:
            ok, detail, value = check(response)
        seconds = self._clock() - started
        result = StepResult(name, f"{method} {url}", ok, detail, seconds)
        self.results.append(result)
        self._on_step(result)
        return value if ok else None


def run_login_flow(
    fetch: Fetch,
    origin_url: str,
    marker: str,
    portal_hosts: Collection[str],
    on_step: Callable[[StepResult], None] = lambda step: None,
    clock: Callable[[], float] = time.monotonic,
) -> list[StepResult]:
    """Log in by clicking through, as a browser would; stop at the first failure.

    1. GET origin_url: a 511 with Cache-Control no-store, a link and a meta
       refresh to a portal at one of portal_hosts.
    2. GET that portal URL: a 200 page with a POST form.
    3. POST the form's fields: a 303 back to origin_url.
    4. GET origin_url: a 200 page containing marker.
    """
    recorder = _Recorder(fetch, on_step, clock)
    portal_url = recorder.step(
        "511 from the origin",
        "GET",
        origin_url,
        None,
        lambda response: check_captive_response(response, origin_url, portal_hosts),
    )
    if portal_url is None:
        return recorder.results
    form = recorder.step(
        "splash page",
        "GET",
        portal_url,
        None,
        lambda response: check_splash_page(response, portal_url),
    )
    if form is None:
        return recorder.results
    target = recorder.step(
        "accept the terms",
        "POST",
        form.action,
        form.fields,
        lambda response: check_redirect(response, form.action, origin_url),
    )
    if target is None:
        return recorder.results
    recorder.step(
        "original page",
        "GET",
        target,
        None,
        lambda response: check_online(response, marker),
    )
    return recorder.results


def flow_succeeded(results: list[StepResult]) -> bool:
    """Tell whether run_login_flow completed every step and each one passed."""
    return len(results) == STEP_COUNT and all(step.ok for step in results)


# The checks, one per step. Each returns whether the response was right,
# what was seen, and what the next step needs from it.


def check_captive_response(
    response: Response, origin_url: str, portal_hosts: Collection[str]
) -> Check[str]:
    """Check a 511 (RFC 6585 section 6) and return the portal URL it points to."""
    if response.status != 511:
        return False, f"expected 511, got {_summary(response)}", None
    cache_control = response.header("cache-control") or ""
    if "no-store" not in cache_control.lower():
        return (
            False,
            f"511 without Cache-Control: no-store (got {cache_control!r})",
            None,
        )
    refresh, links, _ = parse_page(response.body, origin_url)
    if refresh is None:
        return False, "511 body has no <meta http-equiv=refresh> with a URL", None
    if not links:
        return False, "511 body has no link to the portal", None
    host = urlsplit(refresh).hostname
    if host not in portal_hosts:
        return False, f"meta refresh leads to {refresh}, not to the portal", None
    return True, f"511, no-store, refresh to {_shorten(refresh)}", refresh


def check_splash_page(response: Response, url: str) -> Check[Form]:
    """Check the splash page and return its POST form."""
    if response.status != 200:
        return False, f"expected 200, got {_summary(response)}", None
    _, _, forms = parse_page(response.body, url)
    posting = [form for form in forms if form.method == "post"]
    if not posting:
        return False, "splash page has no POST form", None
    form = posting[0]
    names = ", ".join(sorted(form.fields)) or "none"
    return True, f"200, form to {form.action} with fields {names}", form


def check_redirect(response: Response, url: str, expected: str) -> Check[str]:
    """Check a 303 to expected, the address first requested, and return it."""
    location = response.header("location")
    if response.status != 303 or location is None:
        return False, f"expected 303 to {expected}, got {_summary(response)}", None
    target = urljoin(url, location)
    if target != expected:
        return False, f"303 to {target}, expected {expected}", None
    return True, f"303 to {target}", target


def check_online(response: Response, marker: str) -> Check[str]:
    """Check that the origin's own page arrived, and return its body."""
    if response.status != 200:
        return False, f"expected 200 from the origin, got {_summary(response)}", None
    if marker not in response.body:
        body = _shorten(response.body)
        return False, f"200 without the origin's marker: {body!r}", None
    return True, "200 from the origin, marker present", response.body


def _summary(response: Response) -> str:
    location = response.header("location")
    where = f" to {location}" if location else ""
    return f"{response.status}{where}: {_shorten(response.body)!r}"


def _shorten(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
