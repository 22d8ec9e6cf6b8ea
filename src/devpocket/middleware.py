"""The outermost layer, in plain ASGI (cheap on the hot path).

Per HTTP request: a request id (from ``X-Request-ID`` or new) bound to every log line and echoed
back; a trailing slash dropped so both spellings answer without a redirect; a body size limit
(413); one access log line; and the single catch-all that logs an
unexpected exception's traceback once and answers 500 in the envelope with the request id.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devpocket import metrics
from devpocket.envelope import error_body

log = structlog.get_logger("devpocket.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(Exception):
    """The request body passed the configured limit while being read."""


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    request_id: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/", "raw_path": None}
        incoming = header_value(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, request_id)
            else:
                await self.app(scope, receive, send)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "user_id")

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self._answer(scope, receive, send, request_id, started)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, started: float
    ) -> None:
        status = 500
        response_started = False
        declared = header_value(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_json(send, 413, self._too_large(request_id), request_id)
            self._access_log(scope, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            status = 413
            if not response_started:
                await send_json(send, 413, self._too_large(request_id), request_id)
        except Exception:  # noqa: BLE001, RUF100 - the application's one catch-all
            status = 500
            await self._internal_error(scope, send, request_id, response_started)
        self._access_log(scope, status, started)

    @staticmethod
    async def _internal_error(
        scope: Scope, send: Send, request_id: str, response_started: bool
    ) -> None:
        """Log the traceback once; answer 500 in the envelope unless an answer already began."""
        log.exception("request.failed", method=scope["method"], path=scope["path"])
        if not response_started:
            body = error_body(
                "Something went wrong on our side. Quote the request id when reporting it.",
                "internal_error",
                request_id=request_id,
            )
            await send_json(send, 500, body, request_id)

    def _too_large(self, request_id: str) -> dict[str, Any]:
        return error_body(
            f"The request body is larger than {self.max_body_bytes} bytes.",
            "payload_too_large",
            request_id=request_id,
        )

    @staticmethod
    def _access_log(scope: Scope, status: int, started: float) -> None:
        """One log line and the request metrics, by route template (bounded label values)."""
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None)
        method = scope["method"]
        metrics.observe_request(method, route or "unmatched", status, elapsed)
        log.info(
            "request",
            method=method,
            path=scope["path"],
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )
