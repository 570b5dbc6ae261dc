"""Rendering the portal's HTML pages from Jinja2 templates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from capport.portal.headers import SECURITY_HEADERS

TEMPLATES = Path(__file__).parent / "templates"

_BLANK_LINES = re.compile(r"\n\s*\n")


def split_paragraphs(text: str) -> list[str]:
    """Split plain text into paragraphs at blank lines, dropping empty ones."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = (part.strip() for part in _BLANK_LINES.split(text))
    return [part for part in paragraphs if part]


class Pages:
    """Renders the portal's templates into HTML responses."""

    def __init__(self, site_title: str) -> None:
        # Autoescaping is on for every template, so any value a page shows
        # (terms, URLs, addresses) is escaped unless a template marks it safe,
        # and none does.
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._site_title = site_title

    def render(
        self,
        template: str,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """Render template with context into a response with the security headers.

        The headers are set here as well as by the middleware, because the
        500 page is sent from outside the middleware stack.
        """
        html = self._env.get_template(template).render(
            site_title=self._site_title, **context
        )
        all_headers = dict(headers or {})
        all_headers.update(SECURITY_HEADERS)
        return HTMLResponse(html, status_code=status_code, headers=all_headers)
