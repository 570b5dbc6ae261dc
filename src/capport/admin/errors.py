"""JSON error responses of the admin API: {"error": ..., "field": ...}.

Invalid JSON and a body that is not an object are 400. A value of the wrong
type or out of range is 422, naming the field. Unknown paths and records are
404, missing or wrong tokens 401, foreign origins 403. A failure of the
store or the firewall is 503, with the error logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from capport.errors import CapportError

log = logging.getLogger("capport.admin")


class ApiError(Exception):
    """A 4xx response with the problem and the field it concerns."""

    def __init__(
        self,
        status_code: int,
        error: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.field = field
        self.headers = dict(headers or {})


def error_response(
    status_code: int,
    error: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "field": field}, status_code=status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(CapportError, _gateway_error)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status_code, error.error, error.field, error.headers)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    detail = error.detail
    if error.status_code == 404:
        detail = f"no such path {request.url.path}; see /api/v1/openapi.json"
    elif error.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(error.status_code, str(detail), None, error.headers)


async def _gateway_error(request: Request, error: Exception) -> JSONResponse:
    log.error("Admin request %s %s failed: %s", request.method, request.url.path, error)
    return error_response(503, f"the gateway could not do this: {error}")


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems: Sequence[Any] = error.errors()
    first: Any = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    kind = first.get("type", "")
    location = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return error_response(400, f"the body is not valid JSON: {detail}", "body")
    if location == ("body",):
        return error_response(
            400,
            "the body must be a JSON object with Content-Type: application/json",
            "body",
        )
    field = ".".join(str(part) for part in location[1:]) or location[0]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "missing":
        message = "required field is missing"
    return error_response(422, message, str(field))
