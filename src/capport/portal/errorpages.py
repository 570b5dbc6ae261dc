"""Error pages: a status, one sentence of explanation and a link to start over.

No page shows a traceback or any part of the request, so nothing a client
sends is echoed back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from capport.errors import CapportError, DeviceNotFound
from capport.portal.pages import Pages
from capport.portal.throttle import ThrottledLog

log = logging.getLogger("capport.portal")

EXPLANATIONS: dict[int, str] = {
    400: "The request could not be understood.",
    403: "The request was refused because it did not come from this portal's "
    "own page. Go back to the start page and try again.",
    404: "There is no page at this address.",
    405: "This page does not accept that kind of request.",
    409: "The request conflicts with the state of the network.",
    413: "The request was too large.",
    429: "Too many requests came from your device. Try again in a minute.",
    500: "Something went wrong on the gateway. Try again in a moment.",
    503: "The gateway cannot handle this request right now. Try again in a moment.",
}

DEVICE_NOT_FOUND = (
    "The gateway could not identify your device on the network. Disconnect "
    "from the network, reconnect and try again."
)

_GENERIC = "The request could not be completed."


class PageError(HTTPException):
    """An HTTP error whose page shows an explanation written by the portal.

    The explanation must be fixed text and never contain request values.
    """

    def __init__(
        self,
        status_code: int,
        explanation: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        text = explanation or EXPLANATIONS.get(status_code, _GENERIC)
        super().__init__(status_code, detail=text, headers=headers)


class ErrorPages:
    """The exception handlers that turn errors into error pages."""

    def __init__(self, pages: Pages) -> None:
        self._pages = pages
        self._throttled = ThrottledLog(log)

    def handlers(self) -> dict[Any, Any]:
        """Return the handlers in the form Starlette's exception_handlers takes."""
        return {
            HTTPException: self.http_error,
            DeviceNotFound: self.device_not_found,
            CapportError: self.gateway_error,
            Exception: self.server_error,
        }

    def render(
        self,
        status_code: int,
        explanation: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Render the error page for status_code."""
        return self._pages.render(
            "error.html",
            status_code=status_code,
            headers=headers,
            status=status_code,
            heading=_reason_phrase(status_code),
            explanation=explanation,
        )

    async def http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if isinstance(error, PageError):
            explanation = error.detail
        else:
            # Starlette's own details are reason phrases. The fixed text reads
            # better and cannot carry request data.
            explanation = EXPLANATIONS.get(error.status_code, _GENERIC)
        return self.render(error.status_code, explanation, error.headers)

    async def device_not_found(self, request: Request, error: Exception) -> Response:
        self._throttled.log(
            logging.WARNING, "device", "Could not identify a portal client: %s.", error
        )
        return self.render(503, DEVICE_NOT_FOUND)

    async def gateway_error(self, request: Request, error: Exception) -> Response:
        log.error("Request %s %r failed: %s", request.method, request.url.path, error)
        return self.render(503, EXPLANATIONS[503])

    async def server_error(self, request: Request, error: Exception) -> Response:
        # Starlette re-raises the error after this page is sent, and uvicorn
        # logs it with its traceback.
        return self.render(500, EXPLANATIONS[500])


def _reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"
