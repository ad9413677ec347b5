"""How the app answers errors: every one as the JSON body of :class:`~liteseg.serve.errors.ApiError`, counted
in the metrics by its code (a client that went away is logged, not counted)."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .errors import ApiError
from .telemetry import ServeMetrics

log = logging.getLogger("liteseg")


def add_error_handlers(app: FastAPI, metrics: ServeMetrics) -> None:
    """Answer API errors, invalid parameters, unknown routes/methods and unexpected failures with JSON."""

    def respond(error: ApiError) -> JSONResponse:
        if error.status == 499:  # the client went away: nothing went wrong here
            log.info("client disconnected during an upload (%s)", error.message)
        else:
            metrics.error(error.code)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(ApiError(422, "invalid_parameter", validation_message(exc)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return respond(http_api_error(request, exc))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(ApiError(500, "internal_error", "unexpected server error; the server keeps running, see its "
                                "log"))


def validation_message(exc: RequestValidationError) -> str:
    """``name: problem; ...`` for each invalid query parameter."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())


def http_api_error(request: Request, exc: HTTPException) -> ApiError:
    """Starlette's 404 / 405 (and any other HTTP error) as an ApiError that points at the API listing."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {404: f"no endpoint at {request.url.path}; the API is listed at /openapi.json",
               405: f"{request.method} is not allowed on {request.url.path}; the API is listed at /openapi.json",
               }.get(exc.status_code, str(exc.detail))
    return ApiError(exc.status_code, code, message, dict(exc.headers or {}))
