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
from devpocket.auth.deps import Authenticated, recheck
from devpocket.broker import BrokerUnavailable
from devpocket.context import AppContext
from devpocket.errors import Unauthenticated
from devpocket.sync.events import Listener, listening, parse_device
from devpocket.terminal.protocol import CloseCode
from devpocket.terminal.websocket import admit, refuse

log = structlog.get_logger(__name__)


def frame(kind: str, data: Any) -> str:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps({"type": kind, "data": data, "timestamp": now}).decode()


async def sync_socket(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    auth = await admit(websocket, ctx)
    if auth is None:
        return
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
        await refuse(websocket, CloseCode.UNAUTHENTICATED, exc.code, exc.message)
    except BrokerUnavailable:
        await _broker_lost(websocket)
    except (OSError, RuntimeError, WebSocketDisconnect):
        return  # the client went away mid-send


async def _broker_lost(websocket: WebSocket) -> None:
    """Without the broker no notice would come: the client reconnects (and reads the head)."""
    log.warning("sync.socket_broker_unavailable")
    message = "Change notices are unavailable; reconnect shortly."
    await refuse(websocket, CloseCode.INTERNAL_ERROR, "notices_unavailable", message)
