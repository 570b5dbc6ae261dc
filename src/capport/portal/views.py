"""The portal's pages: splash and sign-in forms, status and logout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from capport.auth.clickthrough import DetailsMode
from capport.auth.entitlement import Method
from capport.errors import TokenError
from capport.gateway import Gateway
from capport.models import Device, EndReason, IPAddress, Session
from capport.portal.csrf import CsrfTokens
from capport.portal.errorpages import PageError
from capport.portal.inputs import (
    Origin,
    client_address,
    is_same_origin,
    read_form,
)
from capport.portal.pages import Pages
from capport.portal.throttle import ThrottledLog
from capport.portal.timefmt import (
    describe_duration,
    format_iso_time,
    format_local_time,
)
from capport.tokens import TokenSigner

log = logging.getLogger("capport.portal")

# The method name of sessions granted by the Accept form.
GRANT_METHOD = Method.CLICK_THROUGH

# A return token contains a URL of at most 8 KiB, about 11 KiB in base64.
# A longer value cannot verify, so it is rejected before any decoding.
MAX_RETURN_TOKEN_CHARS = 16 * 1024

CSRF_REJECTED = (
    "The form has expired or did not come from this portal. Go back to the "
    "start page and try again."
)


@dataclass(frozen=True)
class FormState:
    """What a re-rendered splash page shows next to one method's form.

    values contains the fields safe to show again (name, e-mail, user name),
    never a password or a voucher code.
    """

    method: str | None = None
    notice: str | None = None
    problems: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)


class PortalViews:
    """The request handlers, bound to one gateway and its keys."""

    def __init__(
        self,
        gateway: Gateway,
        signer: TokenSigner,
        csrf: CsrfTokens,
        pages: Pages,
        terms: list[str],
        configured_origin: Origin | None,
        methods: tuple[str, ...] = (Method.CLICK_THROUGH,),
        details: DetailsMode = "off",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gateway = gateway
        self._signer = signer
        self._csrf = csrf
        self._pages = pages
        self._terms = terms
        self._configured_origin = configured_origin
        self._methods = methods
        self._details = details
        self._clock = clock
        self._throttled = ThrottledLog(log)

    # Pages

    async def splash(self, request: Request) -> Response:
        """Show the terms and the sign-in forms, or the status when signed in."""
        device = self._gateway.identify(client_address(request))
        token = request.query_params.get("t", "")
        return_url = self._return_url(token, device.ip)
        session = self._gateway.session_for(device)
        if session is not None:
            return self._status_page(device, session, return_url)
        if self._gateway.is_blocked(device.mac):
            return self._blocked_page(device)
        if self._is_trusted(device):
            return self._trusted_page(device, return_url)
        if self._gateway.mac_conflict(device) is not None:
            return self._conflict_page()
        rejected = "t" in request.query_params and return_url is None
        return self._splash_page(device, token, return_url, rejected)

    async def status(self, request: Request) -> Response:
        """Show the device's session, or a link to the splash page."""
        device = self._gateway.identify(client_address(request))
        session = self._gateway.session_for(device)
        if session is None and self._is_trusted(device):
            return self._trusted_page(device, None)
        return self._status_page(device, session, None)

    async def logout(self, request: Request) -> Response:
        """End the requesting device's session."""
        address = client_address(request)
        await self._read_checked_form(request, address)
        device = self._gateway.identify(address)
        session = self._gateway.session_for(device)
        if session is not None:
            await self._gateway.end(session, EndReason.LOGOUT)
        return self._pages.render("signed_out.html", was_signed_in=bool(session))

    # Helpers

    def _status_page(
        self, device: Device, session: Session | None, return_url: str | None
    ) -> Response:
        if session is None:
            return self._pages.render("status.html", session=None)
        remaining = self._gateway.remaining(session)
        # The deadline runs on the monotonic clock, so the expiry shown is
        # derived from the time left rather than from the stored wall time.
        expires_at = self._clock() + remaining
        return self._pages.render(
            "status.html",
            session=session,
            mac=device.mac,
            ip=str(device.ip),
            started_local=format_local_time(session.started_at),
            started_iso=format_iso_time(session.started_at),
            expires_local=format_local_time(expires_at),
            expires_iso=format_iso_time(expires_at),
            remaining=describe_duration(remaining),
            signed_in_with=_describe_method(session),
            return_url=return_url,
            return_host=_host_of(return_url),
            csrf_token=self._csrf.issue(str(device.ip)),
        )

    def _splash_page(
        self,
        device: Device,
        token: str,
        return_url: str | None,
        rejected: bool,
        state: FormState = FormState(),
        status_code: int | None = None,
    ) -> Response:
        if status_code is None:
            status_code = 400 if rejected else 200
        return self._pages.render(
            "splash.html",
            status_code=status_code,
            terms=self._terms,
            methods=self._methods,
            details=self._details,
            csrf_token=self._csrf.issue(str(device.ip)),
            return_token=token if return_url else "",
            return_host=_host_of(return_url),
            token_rejected=rejected,
            notice_for=state.method,
            notice=state.notice,
            problems=state.problems,
            values=state.values,
        )

    def _conflict_page(self) -> Response:
        return self._pages.render("conflict.html", status_code=409)

    def _blocked_page(self, device: Device) -> Response:
        return self._pages.render("blocked.html", status_code=403, mac=device.mac)

    def _is_trusted(self, device: Device) -> bool:
        return device.mac in self._gateway.mac_lists.trusted

    def _trusted_page(self, device: Device, return_url: str | None) -> Response:
        # The firewall accepts a trusted MAC before any session check, so
        # the device is online without signing in.
        return self._pages.render(
            "trusted.html",
            mac=device.mac,
            return_url=return_url,
            return_host=_host_of(return_url),
        )

    async def _read_checked_form(
        self, request: Request, address: IPAddress
    ) -> dict[str, str]:
        """Read a POSTed form, raising PageError(403) unless it is this portal's."""
        if not is_same_origin(request, self._configured_origin):
            self._throttled.log(
                logging.WARNING,
                "origin",
                "Rejected a POST to %s from %s: its Origin header %.200r is "
                "not this portal's.",
                request.url.path,
                address,
                request.headers.get("origin"),
            )
            raise PageError(403)
        form = await read_form(request)
        if not self._csrf.is_valid(form.get("csrf", ""), str(address)):
            self._throttled.log(
                logging.WARNING,
                "csrf",
                "Rejected a POST to %s from %s: the CSRF token is missing, "
                "forged or expired.",
                request.url.path,
                address,
            )
            raise PageError(403, CSRF_REJECTED)
        return form

    def _return_url(self, token: str, address: IPAddress) -> str | None:
        """Return the captured URL inside token, or None if there is none."""
        if not token:
            return None
        if len(token) > MAX_RETURN_TOKEN_CHARS:
            error: Exception = TokenError("the portal token is too long")
        else:
            try:
                return self._signer.verify(token)
            except TokenError as caught:
                error = caught
        self._throttled.log(
            logging.INFO,
            "token",
            "Ignored the return token from %s: %s.",
            address,
            error,
        )
        return None


def _describe_method(session: Session) -> str:
    if session.method in (Method.USER, Method.RADIUS):
        return f"the account {session.subject}"
    if session.method == Method.VOUCHER:
        return "a voucher"
    return "the terms of use"


def _host_of(url: str | None) -> str | None:
    if url is None:
        return None
    return urlsplit(url).hostname
