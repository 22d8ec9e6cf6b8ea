"""Probes: liveness (the process answers) and readiness (database and broker reachable)."""

from __future__ import annotations

import time

import anyio
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from devpocket import __version__
from devpocket.api import API_PREFIX, make_router
from devpocket.broker import BrokerUnavailable
from devpocket.context import AppContext
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_body, error_responses, ok
from devpocket.health.schemas import Liveness, Readiness

router = make_router("", "health")
_STARTED = time.monotonic()
_CHECK_TIMEOUT = 2.0


async def _database(ctx: AppContext) -> str:
    try:
        with anyio.fail_after(_CHECK_TIMEOUT):
            async with ctx.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return "unavailable"
    return "ok"


async def _broker(ctx: AppContext) -> str:
    try:
        with anyio.fail_after(_CHECK_TIMEOUT):
            await ctx.broker.ping()
    except (BrokerUnavailable, TimeoutError):
        return "unavailable"
    return "ok"


async def readiness(ctx: AppContext) -> Readiness:
    return await ctx.readiness.get(lambda: _check_now(ctx))


async def _check_now(ctx: AppContext) -> Readiness:
    checks = {"database": await _database(ctx), f"broker_{ctx.broker.name}": await _broker(ctx)}
    healthy = all(v == "ok" for v in checks.values())
    return Readiness(
        status="ok" if healthy else "unavailable",
        version=__version__,
        environment=ctx.settings.environment.value,
        uptime_seconds=int(time.monotonic() - _STARTED),
        checks=checks,
    )


def _answer(report: Readiness) -> Envelope[Readiness] | JSONResponse:
    if report.status == "ok":
        return ok(report)
    body = error_body("The service is not ready.", "not_ready", details=report.model_dump())
    return JSONResponse(body, status_code=503)


# Always the same answer: rendered once, not validated and serialized on every probe.
_ALIVE = ok(Liveness()).model_dump_json().encode()


@router.get(
    "/health/live",
    summary="Liveness: the server accepts requests",
    response_model=Envelope[Liveness],
)
async def live() -> Response:
    return Response(_ALIVE, media_type="application/json")


async def ready(ctx: Ctx) -> Envelope[Readiness] | JSONResponse:
    """Readiness: 200 when the database and the broker answer, 503 (with the checks) otherwise."""
    return _answer(await readiness(ctx))


api_router = make_router(API_PREFIX, "health")

# One check, three addresses: the probe path, the summary, and the summary where the app calls it.
for _router, _path, _name, _summary in (
    (router, "/health/ready", "ready", "Readiness: the database and the broker answer"),
    (router, "/health", "health", "Health summary"),
    (api_router, "/health", "api_health", "Health summary, under the API prefix the app calls"),
):
    _router.add_api_route(
        _path,
        ready,
        methods=["GET"],
        name=_name,
        response_model=Envelope[Readiness],
        responses=error_responses(503),
        summary=_summary,
    )
