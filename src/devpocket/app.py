"""``create_app(settings)``: the FastAPI application, its lifespan, routers and error handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from devpocket import __version__
from devpocket.ai.router import router as ai_router
from devpocket.api import operation_id
from devpocket.auth.router import router as auth_router
from devpocket.billing.router import router as billing_router
from devpocket.context import build_context
from devpocket.envelope import error_body
from devpocket.errors import AppError
from devpocket.health.router import api_router as api_health_router
from devpocket.health.router import router as health_router
from devpocket.history import retention as history_retention
from devpocket.history.router import router as history_router
from devpocket.log import configure_logging
from devpocket.metrics import router as metrics_router
from devpocket.metrics import sample_pool
from devpocket.middleware import RequestContextMiddleware
from devpocket.ratelimit import RateLimitMiddleware
from devpocket.security_headers import SecurityMiddleware
from devpocket.settings import Settings
from devpocket.ssh.router import router as ssh_router
from devpocket.sync import retention as sync_retention
from devpocket.sync.router import router as sync_router
from devpocket.sync.router import socket_router as sync_socket_router
from devpocket.terminal.router import router as terminal_router
from devpocket.terminal.router import socket_router as terminal_socket_router
from devpocket.terminal.websocket import watch_revocations
from devpocket.users.router import router as users_router

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _app_error(request: Request, error: AppError) -> JSONResponse:
    body = error_body(
        error.message, error.code, details=error.details, request_id=_request_id(request)
    )
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location if part != "body") or "body"


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    # Never echo `input`: it may be a password.
    details = [
        {"field": _field(e["loc"]), "loc": list(e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in error.errors()
    ]
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"Invalid request: {first['field']}: {first['message']}"
    body = error_body(message, "validation_error", details=details, request_id=_request_id(request))
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    status = error.status_code
    if status == 404:
        message = f"There is no {request.method} {request.url.path} here."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(error.detail)
    body = error_body(
        message, _HTTP_CODES.get(status, f"http_{status}"), request_id=_request_id(request)
    )
    return JSONResponse(body, status_code=status, headers=error.headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_startup()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_context(settings) as ctx:
            app.state.ctx = ctx
            ctx.tasks.start_soon(sample_pool, ctx.engine)
            ctx.tasks.start_soon(watch_revocations, ctx)
            ctx.tasks.start_soon(history_retention.run, ctx.sessionmaker, settings)
            ctx.tasks.start_soon(sync_retention.run, ctx.sessionmaker, settings)
            # What start-up built lives as long as the process: keep the collector from scanning
            # it again at every full collection (long pauses that show as p99 latency).
            gc.collect()
            gc.freeze()
            log.info("server.started", version=__version__, broker=ctx.broker.name)
            yield
            log.info("server.stopping")

    app = FastAPI(
        title="DevPocket API",
        version=__version__,
        summary="The server behind DevPocket, an AI-powered terminal for phones.",
        lifespan=lifespan,
        debug=False,
        redirect_slashes=False,
        generate_unique_id_function=operation_id,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks look up providers and the environment on every request
        # (~10 % of a cheap request here); metrics and logs are ours (structlog, Prometheus).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        # Given here rather than through add_exception_handler, whose type makes each handler
        # take any Exception: FastAPI's own parameter lets each one name the error it handles.
        exception_handlers={
            AppError: _app_error,
            RequestValidationError: _validation_error,
            StarletteHTTPException: _http_error,
        },
    )
    app.state.settings = settings
    # Probes first: load balancers call them most. The routes join the app's own list rather
    # than being included: FastAPI matches an included router through a wrapper per level, a
    # cost paid on every request (measured with bench/; see the commit that made this change).
    routers = (
        health_router, metrics_router, auth_router, users_router, ssh_router, ai_router,
        billing_router, terminal_router, terminal_socket_router, history_router,
        sync_router, sync_socket_router,
    )  # fmt: skip
    for router in (*routers, api_health_router):
        app.router.routes.extend(router.routes)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(SecurityMiddleware, settings=settings)
    return app
