"""The sign-in handlers: Accept (click-through), login (local user or RADIUS)
and voucher.

Each handler checks its form, turns it into an Entitlement and hands that to
the gateway. Failed user, RADIUS and voucher sign-ins count against the
client address, and the password or code is never logged or shown again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from capport.auth.clickthrough import DetailsMode, read_contact
from capport.auth.entitlement import Entitlement, Method
from capport.auth.ratelimit import FailureLimiter
from capport.auth.records import Contact
from capport.auth.users import authenticate_user
from capport.auth.vouchers import authenticate_voucher
from capport.errors import (
    DeviceBlocked,
    DeviceLimitReached,
    RadiusError,
    VoucherUnavailable,
)
from capport.gateway import Gateway
from capport.metrics import LOGIN_FAILURES
from capport.models import Device, IPAddress
from capport.portal.csrf import CsrfTokens
from capport.portal.errorpages import PageError
from capport.portal.inputs import Origin, client_address
from capport.portal.pages import Pages
from capport.portal.views import FormState, PortalViews
from capport.tokens import TokenSigner

log = logging.getLogger("capport.portal")

# One message for a wrong name and a wrong password, so that the page does
# not tell which user names exist.
WRONG_PASSWORD = "The user name or password is incorrect. Check both and try again."
WRONG_CODE = "This voucher code is not valid. Check the code and try again."
VOUCHER_UNAVAILABLE = (
    "This voucher has expired, has been used up or has been withdrawn. "
    "Ask the staff for a new one."
)
DETAILS_PROBLEM = "Some of the details are missing or invalid."
SERVICE_UNAVAILABLE = "The sign-in service is not responding. Try again in a moment."
TOO_MANY_FAILURES = (
    "Too many failed sign-in attempts came from your device. Try again in "
    "{seconds} seconds."
)


class PasswordService(Protocol):
    """A remote check of user names and passwords, such as RADIUS."""

    async def authenticate(
        self, username: str, password: str, device: Device, default_duration: float
    ) -> Entitlement | None:
        """Return the entitlement for valid credentials, or None.

        Raises RadiusError when the credentials could not be checked.
        """
        ...


class SignInViews(PortalViews):
    """The portal's handlers, with the sign-in forms of the configured methods."""

    def __init__(
        self,
        gateway: Gateway,
        signer: TokenSigner,
        csrf: CsrfTokens,
        pages: Pages,
        terms: list[str],
        configured_origin: Origin | None,
        *,
        methods: tuple[str, ...],
        details: DetailsMode,
        limiter: FailureLimiter,
        user_max_devices: int | None = None,
        radius: PasswordService | None = None,
    ) -> None:
        super().__init__(
            gateway,
            signer,
            csrf,
            pages,
            terms,
            configured_origin,
            methods=methods,
            details=details,
        )
        self._limiter = limiter
        self._user_max_devices = user_max_devices
        self._radius = radius

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
        """Grant access for a user name and password: a local user, then RADIUS.

        With both methods, a name that is not a local user, or whose local
        password does not match, is checked with RADIUS.
        """
        login_method = Method.USER if Method.USER in self._methods else Method.RADIUS
        self._require_method(login_method)
        address = client_address(request)
        self._check_rate(address)
        form = await self._read_checked_form(request, address)
        username = form.get("username", "")
        password = form.get("password", "")
        entitlement = None
        if Method.USER in self._methods:
            entitlement = await authenticate_user(
                self._gateway.store,
                username,
                password,
                self._gateway.session_duration,
                self._user_max_devices,
            )
        if entitlement is None and Method.RADIUS in self._methods:
            entitlement = await self._check_radius(address, username.strip(), password)
        if entitlement is None:
            state = FormState(
                login_method, WRONG_PASSWORD, values={"username": username}
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

    # Helpers

    async def _check_radius(
        self, address: IPAddress, username: str, password: str
    ) -> Entitlement | None:
        """Check credentials with RADIUS; raise PageError(503) if it cannot."""
        device = self._gateway.identify(address)
        try:
            if self._radius is None:
                raise RadiusError("the portal was built without a RADIUS client")
            return await self._radius.authenticate(
                username, password, device, self._gateway.session_duration
            )
        except RadiusError as error:
            self._throttled.log(
                logging.ERROR,
                "radius",
                "Checking the sign-in of %s with RADIUS failed: %s",
                device,
                error,
            )
            raise PageError(503, SERVICE_UNAVAILABLE) from None

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
        if self._gateway.is_blocked(device.mac):
            return self._blocked_page(device)
        if self._gateway.mac_conflict(device) is not None:
            return self._conflict_page()
        return_url = self._return_url(form.get("t", ""), address)
        if "t" in form and return_url is None:
            # An empty, forged or expired return token grants nothing. The
            # person gets a fresh form without it and a 400 page explaining why.
            return self._splash_page(device, "", None, rejected=True)
        # A second submission, from a double click or a reloaded form, keeps
        # the running session instead of starting a new one.
        if self._gateway.session_for(device) is None:
            try:
                await self._gateway.grant(device, entitlement, contact=contact)
            except DeviceLimitReached as error:
                return self._device_limit_page(device, entitlement, error)
            except DeviceBlocked:
                # Blocked between the check above and the grant.
                return self._blocked_page(device)
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
        LOGIN_FAILURES.labels(state.method or "unknown").inc()
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
        subject_kind = "voucher" if entitlement.method == Method.VOUCHER else "account"
        return self._pages.render(
            "device_limit.html",
            status_code=409,
            subject_kind=subject_kind,
            limit=error.limit,
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
