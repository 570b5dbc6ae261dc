"""The admin application: the HTTP JSON API, its OpenAPI description and /metrics.

FastAPI builds the OpenAPI description from the routes' type hints and
pydantic models, so the description cannot drift from what the handlers
accept. The same application serves the admin listener, where every path
needs a bearer token, and the root-only control socket, where none does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.routing import Mount

from capport import __version__
from capport.admin import accounts, clients, tokens
from capport.admin.context import AdminContext
from capport.admin.errors import install_error_handlers
from capport.admin.metrics import GatewayCollector, build_registry
from capport.admin.schemas import ErrorBody
from capport.admin.security import TokenCheck, authenticate
from capport.control import create_control_app
from capport.dashboard import mount_dashboard

API_PREFIX = "/api/v1"

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "invalid JSON or a body that is not an object"),
        (401, "missing, invalid or revoked bearer token"),
        (
            403,
            "a cross-origin request that would change state, or a token "
            "request that did not come through the control socket",
        ),
        (404, "unknown MAC, user, voucher, token or path"),
        (409, "the name is taken or the MAC is blocked"),
        (422, "a field of the wrong type or out of range"),
        (503, "the store or the firewall failed"),
    )
}


def create_admin_app(
    context: AdminContext,
    *,
    require_token: bool = True,
    metrics_require_token: bool = True,
    origins: Iterable[str] = (),
) -> FastAPI:
    """Build the admin application for a running gateway.

    require_token=False is for the control socket, which only root reaches.
    origins are those of admin.origins, allowed besides the listener's own.
    """
    app = FastAPI(
        title="capport admin API",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.admin = context
    app.state.token_check = TokenCheck(context.store, require_token)
    app.state.origins = frozenset(origins)
    install_error_handlers(app)

    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(authenticate)], responses=_ERRORS
    )
    api.include_router(clients.router)
    api.include_router(accounts.router)
    api.include_router(tokens.router)

    @api.get("/openapi.json", include_in_schema=False, response_model=None)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(api)
    mount_dashboard(app, context.store, authenticate)
    _add_metrics(app, context, metrics_require_token and require_token)
    return app


def _add_metrics(app: FastAPI, context: AdminContext, require_token: bool) -> None:
    registry = build_registry(
        GatewayCollector(context.gateway, context.responder_stats)
    )
    dependencies = [Depends(authenticate)] if require_token else []

    @app.get(
        "/metrics",
        dependencies=dependencies,
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        tags=["metrics"],
    )
    async def metrics(request: Request) -> Response:
        """Return the gateway's metrics in the Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_socket_app(context: AdminContext) -> Starlette:
    """Build the control socket's application: the admin API without tokens.

    The socket is created with mode 0600, so only root can connect to it.
    The paths of the earlier control API (/v1/...) stay for programs
    written against them.
    """
    legacy = create_control_app(context.gateway)
    admin = create_admin_app(context, require_token=False)
    return Starlette(routes=[*legacy.routes, Mount("", app=admin)])
