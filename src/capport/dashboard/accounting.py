"""GET /api/v1/accounting.csv: the accounting records of a period, as CSV."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Query
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from capport.acct.records import parse_time, render_csv
from capport.store.base import Store

CSV_TYPE = "text/csv; charset=utf-8"


def accounting_route(
    store: Store, authenticate: Callable[..., Awaitable[Any]]
) -> APIRoute:
    """Return the route, with authenticate as its token dependency."""

    async def accounting_csv(
        since: str | None = Query(
            default=None,
            description="start: a date, a UTC date and time, epoch seconds or "
            "a duration ago such as 7d; the oldest record when absent",
        ),
        until: str | None = Query(
            default=None, description="end, in the same forms; now when absent"
        ),
    ) -> Response:
        now = time.time()
        try:
            start = 0.0 if since is None else parse_time(since, now)
        except ValueError as error:
            return _bad_request(str(error), "since")
        try:
            end = now if until is None else parse_time(until, now)
        except ValueError as error:
            return _bad_request(str(error), "until")
        if end <= start:
            return _bad_request("until must be later than since", "until")
        records = await store.accounting_records(start, end)
        return Response(
            render_csv(records),
            media_type=CSV_TYPE,
            headers={
                "content-disposition": 'attachment; filename="accounting.csv"',
                "cache-control": "no-store",
            },
        )

    return APIRoute(
        "/api/v1/accounting.csv",
        accounting_csv,
        methods=["GET"],
        dependencies=[Depends(authenticate)],
        response_class=Response,
        summary="Accounting records of ended sessions, as CSV",
        responses={200: {"content": {"text/csv": {}}}},
        tags=["accounting"],
    )


def _bad_request(message: str, field: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=400)
