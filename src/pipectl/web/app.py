"""The FastAPI application: the API, the pages, /healthz, and errors as one clear line."""

from __future__ import annotations

import os
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from pipectl.clock import SYSTEM, Clock
from pipectl.errors import InvalidInput, NotFound, PipectlError, StoreUnavailable
from pipectl.settings import Settings, load_settings
from pipectl.tokens import parse_api_tokens, signing_key
from pipectl.web import api, pages
from pipectl.web.auth import Auth, AuthError
from pipectl.web.html import page, text

SESSION_KEY_ENV = "PIPECTL_SERVE_SESSION_KEY"  # set by `serve` for its worker processes only
REFRESH_S = 5
# The pages load nothing from anywhere, post only to themselves, and may not be framed (so a
# page elsewhere cannot overlay the buttons: clickjacking). /docs is FastAPI's Swagger UI, which
# loads its script from a CDN, so it is left out.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
UNGUARDED = ("/docs", "/docs/oauth2-redirect", "/redoc")


def create_app(
    settings: Settings,
    *,
    session_key: bytes | None = None,
    refresh_s: int = REFRESH_S,
    clock: Clock = SYSTEM,
) -> FastAPI:
    """The application; every request's `Client` reads "now" from `clock`."""
    tokens = parse_api_tokens(settings.api_tokens.get_secret_value()) if settings.api_tokens else []
    key = signing_key(tokens) if tokens else session_key or secrets.token_bytes(32)
    app = FastAPI(
        title="pipectl",
        summary="Scheduled data-pipeline jobs, their runs and dataset freshness, over HTTP.",
        description="Bearer tokens from PIPECTL_API_TOKENS (docs/web.md). The documents are "
        "the CLI's `--json` documents, field for field.",
        version="1",
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.auth = Auth(tokens, key)
    app.state.refresh_s = refresh_s
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.middleware("http")
    async def _page_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path not in UNGUARDED:
            response.headers.update(PAGE_HEADERS)
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.exception_handler(AuthError)
    def _auth(request: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(request, exc.status, str(exc), headers)

    @app.exception_handler(pages.LoginRequired)
    def _login(request: Request, exc: pages.LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(PipectlError)
    def _pipectl(request: Request, exc: PipectlError) -> Response:
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, InvalidInput):
            status = 400
        elif isinstance(exc, StoreUnavailable):
            status = 503
        else:
            status = 500
        return _error(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 400, validation_message(exc))

    @app.exception_handler(HTTPException)
    def _http(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))

    return app


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of errors as one line: the first, and where it is."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if request.url.path.startswith("/api") or request.url.path == "/healthz":
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    body = (
        f'<h1>{status}</h1><p role="alert">{text(message)}</p><p><a href="/">Back to health</a></p>'
    )
    return HTMLResponse(page(str(status), body), status_code=status, headers=headers)


def app_from_env() -> FastAPI:
    """The application uvicorn's worker processes build (`pipectl serve --workers N`)."""
    key = os.environ.get(SESSION_KEY_ENV)
    return create_app(load_settings(), session_key=bytes.fromhex(key) if key else None)
