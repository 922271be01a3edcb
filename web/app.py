"""The web chat's ASGI app: the API, the page, and the protections around both."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from web.page import STATIC_DIR, page_router
from web.ratelimit import RateLimited
from web.routes import api_router
from web.security import BodyLimit, SecurityHeaders

if TYPE_CHECKING:
    from web.config import WebContext

__all__ = ["create_app"]


def create_app(context: "WebContext") -> FastAPI:
    """The app over ``context``: ``/`` the chat page, ``/api/…`` the API, ``/api/openapi.json`` its description.

    CORS is off (browsers refuse other sites' calls) unless ``ITBOT_WEB_CORS_ORIGINS`` names origins. The
    interactive docs are off: they load scripts from a CDN, which the CSP forbids.
    """
    config = context.config
    app = FastAPI(title=f"{config.org_name} IT assistant API", version="1", openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Ask the IT assistant, rate its answers and reach the helpdesk. Conversations are "
                              "named by a secret token; replies to questions are streamed as Server-Sent Events.")
    app.include_router(api_router(context))
    app.include_router(page_router(config))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type"], max_age=600)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: every response has the headers, a 413 too
    return app


async def _rate_limited(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RateLimited)
    return JSONResponse({"error": error.message(), "retry_after_s": error.retry_after_s}, status_code=429,
                        headers={"Retry-After": str(error.retry_after_s)})


async def _invalid(_request: Request, error: Exception) -> JSONResponse:
    """One readable line per request, never the value sent (it may hold a secret)."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    return JSONResponse({"error": f"{where}: {message}"}, status_code=422)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                        headers=getattr(error, "headers", None))
