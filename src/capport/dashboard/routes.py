"""Routes of the dashboard, added to the admin API's application.

The pages are static files: every value on them comes from the admin API,
fetched by the page's own scripts with the operator's bearer token. The
token lives in the tab's sessionStorage, never in a cookie, so another
site cannot make the browser send it. A Content-Security-Policy allows
scripts, styles and requests from the listener's own origin only, which
is why the pages contain no inline script or style.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capport.dashboard.accounting import accounting_route
from capport.store.base import Store

STATIC = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

# The admin API's token dependency; it raises an HTTP error for a bad token.
Authenticate = Callable[..., Awaitable[Any]]


class SecurityHeaders:
    """Adds the dashboard's security headers to every response of an app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in SECURITY_HEADERS.items():
                    headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page(name: str) -> Callable[[Request], Awaitable[Response]]:
    """Return an endpoint that serves one HTML page of the dashboard."""
    path = STATIC / name

    async def endpoint(request: Request) -> Response:
        response = FileResponse(path, media_type="text/html; charset=utf-8")
        response.headers.update(SECURITY_HEADERS)
        # The pages are small and change with capport's version.
        response.headers["cache-control"] = "no-cache"
        return response

    return endpoint


def dashboard_routes() -> list[Route | Mount]:
    """Return the page and static-file routes, which need no token."""
    static = SecurityHeaders(StaticFiles(directory=STATIC, html=False))
    return [
        Route("/", page("index.html"), methods=["GET", "HEAD"]),
        Route("/vouchers/sheet", page("vouchers.html"), methods=["GET", "HEAD"]),
        Mount("/static", app=static, name="dashboard-static"),
    ]


def mount_dashboard(app: Starlette, store: Store, authenticate: Authenticate) -> None:
    """Add the dashboard and GET /api/v1/accounting.csv to the admin app.

    authenticate is the admin API's token dependency; the CSV export needs
    a token like every other /api/v1 endpoint, the pages do not.
    """
    for route in dashboard_routes():
        app.router.routes.append(route)
    app.router.routes.append(accounting_route(store, authenticate))
