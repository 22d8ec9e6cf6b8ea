"""``/ws/sync``: a device is told at once that its user's feed has changes waiting.

Authentication is the terminal's (``?token=``, a bearer header, or a first ``auth`` frame), and so
are the close codes (:class:`~devpocket.terminal.protocol.CloseCode`). Server frames are JSON text
``{"type", "data", "timestamp"}``: ``sync`` with ``data: {cursor, device_id}`` (the feed's head
when the socket opens, then one per committed change of another device; ``?device_id=`` names
the socket's own), and ``heartbeat`` (``data: "ping"``) when quiet. Frames from the client are
read and ignored. The login is checked again at every heartbeat.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from devpocket import metrics
from devpocket.auth.deps import Authenticated, authenticate_token, recheck
from devpocket.broker import BrokerUnavailable
from devpocket.context import AppContext
from devpocket.errors import Unauthenticated
from devpocket.sync.events import Listener, listening, parse_device
from devpocket.terminal import protocol
from devpocket.terminal.protocol import CloseCode
from devpocket.terminal.websocket import offered_token, origin_allowed, token_from_first_frame

log = structlog.get_logger(__name__)


def frame(kind: str, data: Any) -> str:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps({"type": kind, "data": data, "timestamp": now}).decode()


async def _close(websocket: WebSocket, code: CloseCode, reason: str, message: str) -> None:
    """An error frame saying why, then the close code."""
    metrics.WEBSOCKET_CLOSES.labels(str(int(code))).inc()
    with contextlib.suppress(OSError, RuntimeError):
        await websocket.send_text(protocol.error(reason, message))
        await websocket.close(int(code), message[:120])


async def _authenticate(websocket: WebSocket, ctx: AppContext) -> Authenticated | None:
    """The caller, or None once the socket has been closed with the reason."""
    timeout = ctx.settings.terminal_auth_timeout_seconds
    try:
        token = offered_token(websocket) or await token_from_first_frame(websocket, timeout)
        if token is None:
            await _close(
                websocket, CloseCode.AUTH_TIMEOUT, "auth_timeout", "No auth frame came in time."
            )
            return None
        return await authenticate_token(ctx, token)
    except Unauthenticated as exc:
        await _close(websocket, CloseCode.UNAUTHENTICATED, exc.code, exc.message)
        return None


async def sync_socket(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    await websocket.accept()
    if not origin_allowed(websocket, ctx.settings.cors_origins):
        message = "This origin may not connect."
        await _close(websocket, CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed", message)
        return
    try:
        auth = await _authenticate(websocket, ctx)
    except WebSocketDisconnect:
        return
    if auth is None:
        return
    structlog.contextvars.bind_contextvars(user_id=str(auth.user_id))
    own_device = parse_device(websocket.query_params.get("device_id"))
    metrics.WEBSOCKETS.labels("sync").inc()
    try:
        async with listening(ctx, auth.user_id, own_device) as listener:
            await _serve(websocket, ctx, auth, listener)
    except BrokerUnavailable:
        await _broker_lost(websocket)
    finally:
        metrics.WEBSOCKETS.labels("sync").dec()


async def _serve(
    websocket: WebSocket, ctx: AppContext, auth: Authenticated, listener: Listener
) -> None:
    """Notices and heartbeats out, client frames in, until either side ends."""
    await websocket.send_text(frame("sync", {"cursor": listener.head, "device_id": None}))
    async with anyio.create_task_group() as tasks:

        async def until_disconnected() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            tasks.cancel_scope.cancel()

        tasks.start_soon(until_disconnected)
        await _notify(websocket, ctx, auth, listener)
        tasks.cancel_scope.cancel()


async def _notify(
    websocket: WebSocket, ctx: AppContext, auth: Authenticated, listener: Listener
) -> None:
    try:
        async for notice in listener.updates(ctx.settings.terminal_heartbeat_seconds):
            if notice is not None:
                await websocket.send_text(frame("sync", notice.payload()))
                continue
            await recheck(ctx, auth.claims)
            await websocket.send_text(frame("heartbeat", "ping"))
    except Unauthenticated as exc:
        await _close(websocket, CloseCode.UNAUTHENTICATED, exc.code, exc.message)
    except BrokerUnavailable:
        await _broker_lost(websocket)
    except (OSError, RuntimeError, WebSocketDisconnect):
        return  # the client went away mid-send


async def _broker_lost(websocket: WebSocket) -> None:
    """Without the broker no notice would come: the client reconnects (and reads the head)."""
    log.warning("sync.socket_broker_unavailable")
    message = "Change notices are unavailable; reconnect shortly."
    await _close(websocket, CloseCode.INTERNAL_ERROR, "notices_unavailable", message)
