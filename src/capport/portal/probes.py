"""Portal probes that reach the portal itself, by a DNS name of the gateway.

An operator whose gateway cannot reach a probe's real host (an offline
network, or a host blocked upstream) points that host's name at the gateway
in DNS and sets answer_after_login in its [[probes]] entry. Such a probe
arrives at the portal with the probe host in its Host header, not at the
responder, so this middleware responds to it the same way: a redirect (or
511) before login, the expected response after it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from capport.errors import DeviceNotFound
from capport.gateway import Gateway
from capport.intercept.responses import render_captive_page
from capport.portal.inputs import client_address
from capport.probes import BeforeLogin, ProbeEntry, ProbeTable, normalise_host


class ProbeMiddleware:
    """Responds to requests whose Host and path are in the probe table."""

    def __init__(
        self, app: ASGIApp, probes: ProbeTable, gateway: Gateway, portal_url: str
    ) -> None:
        self.app = app
        self._probes = probes
        self._hosts = probes.hosts
        self._gateway = gateway
        self._portal_url = portal_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self._probe_response(request)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _probe_response(self, request: Request) -> Response | None:
        host = normalise_host(request.headers.get("host"))
        if host is None or host not in self._hosts:
            return None
        probe = self._probes.match(
            host, request.url.path, request.headers.get("user-agent")
        )
        if probe is None:
            return None
        if not self._is_logged_in(request):
            return self._before_login(probe, str(request.url))
        if probe.answer_after_login:
            return expected_response(probe)
        # The name points at the gateway but the entry wants the real host:
        # the portal's own pages (a 404 for a probe path) are all it has.
        return None

    def _is_logged_in(self, request: Request) -> bool:
        """Tell whether the device is online: it has a session or a trusted MAC."""
        try:
            device = self._gateway.identify(client_address(request))
        except DeviceNotFound:
            return False
        if device.mac in self._gateway.mac_lists.trusted:
            return True
        return self._gateway.session_for(device) is not None

    def _before_login(self, probe: ProbeEntry, url: str) -> Response:
        headers = {"Cache-Control": "no-store"}
        if probe.before_login is BeforeLogin.REDIRECT:
            return RedirectResponse(self._portal_url, status_code=302, headers=headers)
        page = render_captive_page(self._portal_url, url)
        return HTMLResponse(page, status_code=511, headers=headers)


def expected_response(probe: ProbeEntry) -> Response:
    """Return the response the probe's real host sends to an online device."""
    if probe.status == 204:
        return Response(status_code=204)
    return Response(
        probe.success_body, status_code=probe.status, media_type=probe.content_type
    )
