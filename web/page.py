"""The chat page: one HTML file with the organisation's name, its colours as a style sheet, static JS and CSS.

No build step and no inline script or style, so the CSP can forbid both.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.config import WebConfig

__all__ = ["STATIC_DIR", "page_router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def _template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def page_router(config: WebConfig) -> APIRouter:
    """``/`` (the page) and ``/theme.css`` (the colours from the settings)."""
    router = APIRouter(include_in_schema=False)
    page = _template().replace("{{org_name}}", html.escape(config.org_name))
    theme = (f":root {{ --primary: {config.primary_colour}; --accent: {config.accent_colour}; }}\n").encode()

    @router.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/theme.css")
    def theme_css() -> Response:
        return Response(theme, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    return router
