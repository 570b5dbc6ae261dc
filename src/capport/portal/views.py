"""The portal's pages: splash and sign-in forms, status and logout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from capport.auth.clickthrough import DetailsMode, read_contact
from capport.auth.entitlement import Entitlement, Method
from capport.auth.ratelimit import FailureLimiter
from capport.auth.records import Contact
from capport.auth.users import authenticate_user
from capport.auth.vouchers import authenticate_voucher
from capport.errors import DeviceLimitReached, TokenError, VoucherUnavailable
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

# One message for a wrong name and a wrong password, so that the page does
# not tell which user names exist.
WRONG_PASSWORD = "The user name or password is incorrect. Check both and try again."
WRONG_CODE = "This voucher code is not valid. Check the code and try again."
VOUCHER_UNAVAILABLE = (
    "This voucher has expired, has been used up or has been withdrawn. "
    "Ask the staff for a new one."
)
DETAILS_PROBLEM = "Some of the details are missing or invalid."
TOO_MANY_FAILURES = (
    "Too many failed sign-in attempts came from your device. Try again in "
    "{seconds} seconds."
)


@dataclass(frozen=True)
class FormState:
    """What a re-rendered splash page shows next to one method's form.

    values holds fields safe to show again (name, e-mail, user name), never
    a password or a voucher code.
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
        limiter: FailureLimiter | None = None,
        user_max_devices: int | None = None,
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
        self._limiter = limiter or FailureLimiter(5, 60.0)
        self._user_max_devices = user_max_devices
        self._clock = clock
        self._throttled = ThrottledLog(log)

    # Pages

    async def splash(self, request: Request) -> Response:
        """Show the terms and the Accept form, or the status when signed in."""
        device = self._gateway.identify(client_address(request))
        token = request.query_params.get("t", "")
        return_url = self._return_url(token, device.ip)
        session = self._gateway.session_for(device)
        if session is not None:
            return self._status_page(device, session, return_url)
        if self._gateway.mac_conflict(device) is not None:
            return self._conflict_page()
        rejected = "t" in request.query_params and return_url is None
        return self._splash_page(device, token, return_url, rejected)

    async def accept(self, request: Request) -> Response:
        """Grant access for accepting the terms, with the details if asked for."""
        self._require_method(Method.CLICK_THROUGH)
        address = client_address(request)
        form = await self._read_checked_form(request, address)
        contact, problems = read_contact(
            self._details, form.get("name", ""), form.get("email", "")
        )
        if problems:
            state = FormState(
                Method.CLICK_THROUGH,
                DETAILS_PROBLEM,
                {problem.field: problem.message for problem in problems},
                {"name": form.get("name", ""), "email": form.get("email", "")},
            )
            return await self._retry_page(address, form, state, 400)
        entitlement = Entitlement(Method.CLICK_THROUGH, self._gateway.session_duration)
        return await self._sign_in(address, form, entitlement, contact)

    async def login(self, request: Request) -> Response:
        """Grant access for a local user's name and password."""
        self._require_method(Method.USER)
        address = client_address(request)
        self._check_rate(address)
        form = await self._read_checked_form(request, address)
        username = form.get("username", "")
        entitlement = await authenticate_user(
            self._gateway.store,
            username,
            form.get("password", ""),
            self._gateway.session_duration,
            self._user_max_devices,
        )
        if entitlement is None:
            state = FormState(
                Method.USER, WRONG_PASSWORD, values={"username": username}
            )
            return await self._failed(
                address, form, state, "wrong user name or password"
            )
        return await self._sign_in(address, form, entitlement, None)

    async def redeem(self, request: Request) -> Response:
        """Grant access for a voucher code."""
        self._require_method(Method.VOUCHER)
        address = client_address(request)
        self._check_rate(address)
        form = await self._read_checked_form(request, address)
        code = form.get("code", "")
        try:
            entitlement = await authenticate_voucher(
                self._gateway.store, code, self._clock()
            )
        except VoucherUnavailable as error:
            state = FormState(Method.VOUCHER, VOUCHER_UNAVAILABLE)
            return await self._failed(address, form, state, str(error))
        if entitlement is None:
            state = FormState(Method.VOUCHER, WRONG_CODE)
            return await self._failed(address, form, state, "unknown voucher code")
        return await self._sign_in(address, form, entitlement, None)

    async def status(self, request: Request) -> Response:
        """Show the device's session, or a link to the splash page."""
        device = self._gateway.identify(client_address(request))
        session = self._gateway.session_for(device)
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

    # Signing in

    async def _sign_in(
        self,
        address: IPAddress,
        form: Mapping[str, str],
        entitlement: Entitlement,
        contact: Contact | None,
    ) -> Response:
        """Grant entitlement to the requesting device and send it back where it was.

        The grant is committed to the store and applied to the firewall
        before the redirect is sent, so the browser's next request goes out.
        """
        device = self._gateway.identify(address)
        if self._gateway.mac_conflict(device) is not None:
            return self._conflict_page()
        return_url = self._return_url(form.get("t", ""), address)
        if "t" in form and return_url is None:
            # An empty, forged or expired return token grants nothing: the
            # person gets a fresh form without it and a 400 that says why.
            return self._splash_page(device, "", None, rejected=True)
        # A second submission, from a double click or a reloaded form, keeps
        # the running session instead of starting a new one.
        if self._gateway.session_for(device) is None:
            try:
                await self._gateway.grant(device, entitlement, contact=contact)
            except DeviceLimitReached as error:
                return self._device_limit_page(device, entitlement, error)
            except VoucherUnavailable as error:
                # Another device took the voucher's last use since it was read.
                state = FormState(Method.VOUCHER, VOUCHER_UNAVAILABLE)
                return await self._failed(address, form, state, str(error))
        self._limiter.reset(str(address))
        return RedirectResponse(return_url or "/status", status_code=303)

    async def _failed(
        self,
        address: IPAddress,
        form: Mapping[str, str],
        state: FormState,
        reason: str,
    ) -> Response:
        """Count a failed sign-in and show the form again with what went wrong.

        reason goes to the log and must never contain the password or code.
        """
        self._limiter.record_failure(str(address))
        self._throttled.log(
            logging.INFO, "sign-in", "Sign-in by %s failed: %s.", address, reason
        )
        return await self._retry_page(address, form, state, 403)

    async def _retry_page(
        self,
        address: IPAddress,
        form: Mapping[str, str],
        state: FormState,
        status_code: int,
    ) -> Response:
        device = self._gateway.identify(address)
        token = form.get("t", "")
        return_url = self._return_url(token, address)
        return self._splash_page(
            device, token, return_url, False, state, status_code=status_code
        )

    def _device_limit_page(
        self, device: Device, entitlement: Entitlement, error: DeviceLimitReached
    ) -> Response:
        log.info("Rejected %s: %s.", device, error)
        what = "voucher" if entitlement.method == Method.VOUCHER else "account"
        return self._pages.render(
            "device_limit.html", status_code=409, what=what, limit=error.limit
        )

    def _require_method(self, method: str) -> None:
        if method not in self._methods:
            raise PageError(404)

    def _check_rate(self, address: IPAddress) -> None:
        """Raise PageError(429) while address has too many recent failures."""
        seconds = self._limiter.retry_after_seconds(str(address))
        if seconds <= 0:
            return
        self._throttled.log(
            logging.WARNING,
            "rate",
            "Rejected a sign-in from %s: too many failures, retry in %d s.",
            address,
            seconds,
        )
        raise PageError(
            429,
            TOO_MANY_FAILURES.format(seconds=seconds),
            headers={"Retry-After": str(seconds)},
        )

    def _conflict_page(self) -> Response:
        return self._pages.render("conflict.html", status_code=409)

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


def _host_of(url: str | None) -> str | None:
    if url is None:
        return None
    return urlsplit(url).hostname
