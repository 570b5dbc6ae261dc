"""The user portal: a Starlette application built around one Gateway."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from capport.auth.ratelimit import FailureLimiter
from capport.config import Config
from capport.gateway import Gateway
from capport.portal.captiveapi import CaptiveApi
from capport.portal.csrf import CsrfTokens
from capport.portal.errorpages import ErrorPages
from capport.portal.headers import SecurityHeadersMiddleware
from capport.portal.inputs import parse_origin
from capport.portal.pages import Pages, split_paragraphs
from capport.portal.probes import ProbeMiddleware
from capport.portal.signin import PasswordService, SignInViews
from capport.probes import ProbeTable, merge_probes
from capport.tokens import TokenSigner

STATIC = Path(__file__).parent / "static"


def create_portal_app(
    gateway: Gateway,
    signer: TokenSigner,
    config: Config,
    secret: bytes,
    radius: PasswordService | None = None,
) -> Starlette:
    """Build the portal application. The caller must start the gateway.

    secret keys the CSRF tokens. The terms of use are read once, here, so a
    missing terms file raises ConfigError now rather than on a request.
    radius checks the login form's credentials when auth.methods lists it.
    """
    pages = Pages(config.portal.title)
    errors = ErrorPages(pages)
    views = SignInViews(
        gateway=gateway,
        signer=signer,
        csrf=CsrfTokens(secret),
        pages=pages,
        terms=split_paragraphs(config.terms_text()),
        configured_origin=parse_origin(config.portal_url()),
        methods=config.auth.methods,
        details=config.auth.details,
        limiter=FailureLimiter(config.auth.max_failures, config.auth.failure_window),
        user_max_devices=config.auth.user_max_devices,
        radius=radius,
    )
    api = CaptiveApi(gateway, config.api, config.portal_url())
    routes = [
        Route(config.api.path, api.endpoint, methods=["GET"]),
        Route("/", views.splash, methods=["GET"]),
        Route("/accept", views.accept, methods=["POST"]),
        Route("/login", views.login, methods=["POST"]),
        Route("/voucher", views.redeem, methods=["POST"]),
        Route("/status", views.status, methods=["GET"]),
        Route("/logout", views.logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(
                ProbeMiddleware,
                probes=ProbeTable(merge_probes(config.probes)),
                gateway=gateway,
                portal_url=config.portal_url(),
            ),
        ],
        exception_handlers=errors.handlers(),
    )
    # Starlette would respond to "/status/" with a redirect to an absolute URL
    # built from the Host header. A plain 404 is simpler and leads nowhere.
    app.router.redirect_slashes = False
    return app
