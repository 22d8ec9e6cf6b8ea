"""Prometheus metrics: defined once here, recorded where things happen, served at ``/metrics``.

With several worker processes (``devpocket serve --workers N``), or when the operator sets it, the
command points ``PROMETHEUS_MULTIPROC_DIR`` at a directory cleared of earlier runs' files before
the app is imported; prometheus-client then keeps each process's values in files there, and a
scrape of any worker sums them.
"""

from __future__ import annotations

import hmac
import os
from functools import cache

import anyio
from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy.ext.asyncio import AsyncEngine

from devpocket.api import make_router
from devpocket.errors import Unauthenticated

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "devpocket_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "devpocket_http_request_duration_seconds",
    "Time to answer HTTP requests, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_IN_FLIGHT = Gauge(
    "devpocket_http_requests_in_flight",
    "HTTP requests being answered.",
    multiprocess_mode="livesum",
)
LOGIN_FAILURES = Counter(
    "devpocket_login_failures_total",
    "Failed sign-ins, by reason (invalid_credentials, throttled, disabled).",
    ["reason"],
)
RATE_LIMITED = Counter(
    "devpocket_rate_limit_rejections_total",
    "Requests refused by a rate limit, by limit.",
    ["limit"],
)
SSH_CONNECTION_TESTS = Counter(
    "devpocket_ssh_connection_tests_total",
    "SSH connection tests, by outcome (success or the error code).",
    ["outcome"],
)
AI_CALLS = Counter(
    "devpocket_ai_calls_total",
    "AI calls to the provider, by outcome (success or the error code).",
    ["outcome"],
)
AI_LATENCY = Histogram(
    "devpocket_ai_call_duration_seconds",
    "Time of AI calls to the provider, retries and repairs included.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DB_POOL = Gauge(
    "devpocket_db_pool_connections",
    "Database pool connections, by state (in_use, idle).",
    ["state"],
    multiprocess_mode="livesum",
)
WEBSOCKETS = Gauge(
    "devpocket_websocket_connections",
    "Open WebSocket connections, by endpoint.",
    ["endpoint"],
    multiprocess_mode="livesum",
)
WEBSOCKET_CLOSES = Counter(
    "devpocket_websocket_closes_total",
    "WebSocket connections closed by the server, by close code.",
    ["code"],
)
TERMINAL_SESSIONS = Gauge(
    "devpocket_terminal_sessions",
    "Live terminal sessions, by type (local, ssh).",
    ["type"],
    multiprocess_mode="livesum",
)
TERMINAL_SESSIONS_STARTED = Counter(
    "devpocket_terminal_sessions_started_total",
    "Terminal sessions started, by type.",
    ["type"],
)
TERMINAL_BYTES = Counter(
    "devpocket_terminal_bytes_total",
    "Bytes through terminal sessions, by direction (in: typed, out: program output).",
    ["direction"],
)

_POOL_SAMPLE_SECONDS = 5.0


@cache
def _request_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled children of the request metrics, looked up once per combination.

    ``labels()`` takes a lock and builds a key on every call; routes are templates and
    statuses few, so the combinations stay a small, bounded set.
    """
    counter = HTTP_REQUESTS.labels(method, route, str(status))
    histogram = HTTP_LATENCY.labels(method, route)
    return counter, histogram


def observe_ai_call(outcome: str, seconds: float) -> None:
    AI_CALLS.labels(outcome).inc()
    AI_LATENCY.observe(seconds)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    counter, histogram = _request_series(method, route, status)
    counter.inc()
    histogram.observe(seconds)


async def sample_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges current (a task of the lifespan's task group)."""
    pool = engine.sync_engine.pool
    while True:
        in_use = getattr(pool, "checkedout", lambda: 0)()
        idle = getattr(pool, "checkedin", lambda: 0)()
        DB_POOL.labels("in_use").set(in_use)
        DB_POOL.labels("idle").set(idle)
        await anyio.sleep(_POOL_SAMPLE_SECONDS)


def exposition() -> bytes:
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


router = make_router("", "operations")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer``."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("A metrics token is required.", code="metrics_token_required")
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
