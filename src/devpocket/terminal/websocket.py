"""``/ws/terminal``: the checks before a socket may drive a terminal, then the frame loop.

Authentication, in the order tried: ``?token=`` (what the app sends; tokens in URLs reach proxy
logs, so the first-frame way is recommended), an ``Authorization: Bearer`` header, or a first
frame ``{"type": "auth", "data": {"token": …}}`` within the auth timeout. A socket is accepted
before it is checked so that the client learns why it is refused: an error frame, then a close
code from :class:`~devpocket.terminal.protocol.CloseCode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from urllib.parse import urlsplit

import anyio
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from devpocket import metrics
from devpocket.auth.deps import Authenticated, authenticate_token, recheck
from devpocket.auth.sessions import REVOKED_CHANNEL, USER_DELETED_CHANNEL
from devpocket.broker import BrokerUnavailable
from devpocket.context import AppContext
from devpocket.errors import Unauthenticated
from devpocket.terminal import protocol
from devpocket.terminal.connection import TerminalConnection
from devpocket.terminal.protocol import CloseCode, FrameError

log = structlog.get_logger(__name__)
_RESUBSCRIBE_SECONDS = 1.0


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Native apps send no Origin; a browser's must be an allowed origin or this server."""
    origin = websocket.headers.get("origin")
    if origin is None or origin in allowed or "*" in allowed:
        return True
    host = websocket.headers.get("host")
    return host is not None and urlsplit(origin).netloc == host


def _offered_token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


async def _token_from_first_frame(websocket: WebSocket, timeout: float) -> str | None:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            message = await websocket.receive()
    except TimeoutError:
        return None
    text = message.get("text") or message.get("bytes")
    if message["type"] != "websocket.receive" or text is None:
        raise WebSocketDisconnect(message.get("code", 1000))
    try:
        frame = protocol.parse_frame(text)
    except FrameError:
        raise Unauthenticated("The first frame must be an auth frame.") from None
    data = frame.data
    token = data.get("token") if isinstance(data, dict) else data
    if frame.type != "auth" or not isinstance(token, str) or not token:
        raise Unauthenticated("The first frame must be {type: auth, data: {token}}.")
    return token


async def _authenticate(websocket: WebSocket, ctx: AppContext) -> Authenticated | None:
    """The caller, or None once the socket has been closed with the reason."""
    timeout = ctx.settings.terminal_auth_timeout_seconds
    try:
        token = _offered_token(websocket) or await _token_from_first_frame(websocket, timeout)
        if token is None:
            await refuse(
                websocket, CloseCode.AUTH_TIMEOUT, "auth_timeout", "No auth frame came in time."
            )
            return None
        return await authenticate_token(ctx, token)
    except Unauthenticated as exc:
        await refuse(websocket, CloseCode.UNAUTHENTICATED, exc.code, exc.message)
        return None


async def admit(websocket: WebSocket, ctx: AppContext) -> Authenticated | None:
    """Accept the socket, check its origin and login; None once it is closed with the reason.

    Shared by every WebSocket of the API (``/ws/terminal``, ``/ws/sync``).
    """
    await websocket.accept()
    if not origin_allowed(websocket, ctx.settings.cors_origins):
        message = "This origin may not connect."
        await refuse(websocket, CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed", message)
        return None
    try:
        auth = await _authenticate(websocket, ctx)
    except WebSocketDisconnect:
        return None
    if auth is not None:
        structlog.contextvars.bind_contextvars(user_id=str(auth.user_id))
    return auth


async def refuse(websocket: WebSocket, code: CloseCode, reason: str, message: str) -> None:
    """An error frame saying why, then the close code."""
    metrics.WEBSOCKET_CLOSES.labels(str(int(code))).inc()
    with contextlib.suppress(OSError, RuntimeError):
        await websocket.send_text(protocol.error(reason, message))
        await websocket.close(int(code), message[:120])


async def terminal_socket(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    auth = await admit(websocket, ctx)
    if auth is None:
        return
    metrics.WEBSOCKETS.labels("terminal").inc()
    try:
        async with anyio.create_task_group() as tasks:
            connection = TerminalConnection(websocket, ctx, auth, tasks)
            ctx.sockets.add(connection)
            try:
                tasks.start_soon(_heartbeat, connection)
                await _receive_loop(websocket, connection)
            finally:
                ctx.sockets.discard(connection)
                connection.detach_all()
                tasks.cancel_scope.cancel()
    finally:
        metrics.WEBSOCKETS.labels("terminal").dec()


async def _receive_loop(websocket: WebSocket, connection: TerminalConnection) -> None:
    while not connection.closed:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            connection.closed = True
            return
        text = message.get("text")
        if text is None:
            await connection.send(
                protocol.error("malformed_frame", "Frames are JSON text, not binary.")
            )
            continue
        await connection.receive(text)


async def _heartbeat(connection: TerminalConnection) -> None:
    """A ping every so often (proxies drop idle sockets), and a fresh look at the login."""
    ctx = connection.ctx
    while not connection.closed:
        await asyncio.sleep(ctx.settings.terminal_heartbeat_seconds)
        try:
            await recheck(ctx, connection.auth.claims)
        except Unauthenticated as exc:
            await connection.close(CloseCode.UNAUTHENTICATED, exc.message)
            return
        await connection.send(protocol.encode("heartbeat", "ping"))


async def watch_revocations(ctx: AppContext) -> None:
    """Close the sockets of a login session as soon as any worker revokes it, and end the
    terminal sessions of a deleted account.

    Should the broker go away, the heartbeat's own check still closes the sockets, later.
    """
    while True:
        try:
            async with ctx.broker.subscribe(REVOKED_CHANNEL, USER_DELETED_CHANNEL) as subscription:
                async for message in subscription:
                    if message.channel == USER_DELETED_CHANNEL:
                        ctx.terminals.account_deleted(uuid.UUID(message.data.decode()))
                    else:
                        await _close_revoked(ctx, message.data.decode())
        except BrokerUnavailable:
            log.warning("terminal.revocation_watch_interrupted")
            await asyncio.sleep(_RESUBSCRIBE_SECONDS)


async def _close_revoked(ctx: AppContext, session_id: str) -> None:
    for connection in list(ctx.sockets):
        if str(connection.auth.session_id) == session_id:
            await connection.close(CloseCode.UNAUTHENTICATED, "This session has been signed out.")
