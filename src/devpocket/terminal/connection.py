"""One terminal WebSocket after authentication: frames in, frames out, sessions attached.

Handlers answer a bad frame with an error frame and keep the socket; only a flood, a revoked
login or shutdown closes it. Creating a session (an SSH connection can take seconds) runs in a
task of the connection, so typing into another session never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from pydantic import ValidationError
from starlette.websockets import WebSocket

from devpocket import metrics
from devpocket.auth.deps import Authenticated
from devpocket.context import AppContext
from devpocket.errors import AppError
from devpocket.terminal import protocol, service
from devpocket.terminal.attachment import Attachment
from devpocket.terminal.protocol import CloseCode, Frame, FrameError
from devpocket.terminal.schemas import SessionCreate
from devpocket.terminal.session import SessionOwner, TerminalSession

log = structlog.get_logger(__name__)


class FrameBudget:
    """Frames per second with a burst of two seconds' worth; sustained excess means a flood."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.tokens = float(rate * 2)
        self.updated = time.monotonic()
        self.refused = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate * 2.0, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused = 0
            return True
        self.refused += 1
        return False

    @property
    def flooding(self) -> bool:
        return self.refused > self.rate * 2


class TerminalConnection:
    def __init__(
        self, websocket: WebSocket, ctx: AppContext, auth: Authenticated, tasks: TaskGroup
    ) -> None:
        self.websocket = websocket
        self.ctx = ctx
        self.auth = auth
        self.owner = SessionOwner(auth.user_id, auth.device_id, auth.profile.subscription_tier)
        self.tasks = tasks
        self.attachments: dict[str, Attachment] = {}
        # RATE_LIMIT_ENABLED=false switches off every rate limit, this one too (CONTRACT.md).
        self.budget = (
            FrameBudget(ctx.settings.terminal_frames_per_second)
            if ctx.settings.rate_limit_enabled
            else None
        )
        self.closed = False
        self._send_lock = asyncio.Lock()
        self._handlers: dict[str, Callable[[Frame], Awaitable[None]]] = {
            "data": self._data,
            "resize": self._resize,
            "control": self._control,
            "heartbeat": self._ignore,
            "auth": self._ignore,
        }

    async def send(self, text: str) -> None:
        if self.closed:
            return
        async with self._send_lock:
            try:
                await self.websocket.send({"type": "websocket.send", "text": text})
            except (OSError, RuntimeError):
                self.closed = True  # gone: the receive loop sees the disconnect

    async def close(self, code: CloseCode, message: str | None = None) -> None:
        if self.closed:
            return
        if message is not None:
            await self.send(protocol.error(code.name.lower(), message))
        self.closed = True
        metrics.WEBSOCKET_CLOSES.labels(str(int(code))).inc()
        with contextlib.suppress(OSError, RuntimeError):
            await self.websocket.close(int(code), message[:120] if message else None)

    # Incoming frames -------------------------------------------------------------------------

    async def receive(self, text: str) -> None:
        budget = self.budget
        if budget is not None and not budget.take():
            if budget.flooding:
                await self.close(CloseCode.FLOODING, "Too many frames: slow down.")
            elif budget.refused == 1:
                await self.send(
                    protocol.error("rate_limited", "Too many frames: this one was dropped.")
                )
            return
        limit = self.ctx.settings.terminal_max_frame_bytes
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
            await self.send(protocol.error("frame_too_large", "The frame is larger than allowed."))
            return
        try:
            frame = protocol.parse_frame(text)
            await self._handlers[frame.type](frame)
        except FrameError as exc:
            await self.send(protocol.error(exc.code, exc.message, exc.session_id))
        except AppError as exc:
            await self.send(protocol.error(exc.code, exc.message))

    def _target(self, frame: Frame) -> TerminalSession:
        """The attached session a frame is for (the only one when it names none)."""
        session_id = frame.session_id
        if session_id is None:
            if len(self.attachments) != 1:
                raise FrameError("session_required", "Name the session in sessionId.")
            session_id = next(iter(self.attachments))
        attachment = self.attachments.get(session_id)
        if attachment is None:
            raise FrameError("session_not_attached", "Attach to this session first.", session_id)
        return attachment.session

    async def _data(self, frame: Frame) -> None:
        if not isinstance(frame.data, str):
            raise FrameError("invalid_data", "Input data must be a string.", frame.session_id)
        self._target(frame).write(frame.data)

    async def _resize(self, frame: Frame) -> None:
        session = self._target(frame)
        session.resize(*protocol.parse_size(frame.data))

    async def _ignore(self, frame: Frame) -> None:
        return None

    async def _control(self, frame: Frame) -> None:
        data = frame.data
        if isinstance(data, str):
            # A command line to run, as the app sends it.
            self._target(frame).write(data if data.endswith(("\r", "\n")) else data + "\r")
            return
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            raise FrameError("invalid_control", "A control frame needs data.action or a string.")
        action = _ACTIONS.get(data["action"])
        if action is None:
            raise FrameError(
                "unknown_action",
                f"Unknown action {data['action']!r}: expected one of {', '.join(_ACTIONS)}.",
                frame.session_id,
            )
        await action(self, frame, data)

    # Actions ---------------------------------------------------------------------------------

    async def _create(self, frame: Frame, data: dict[str, Any]) -> None:
        try:
            request = SessionCreate.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = f"{where}: {first['msg']}" if where else first["msg"]
            await self.send(_session_error(message, "invalid_input", data))
            return
        self.tasks.start_soon(self._open, request, data)

    async def _open(self, request: SessionCreate, data: dict[str, Any]) -> None:
        try:
            # Not given up half-way when the socket goes (a phone losing signal just after
            # asking): a shell or a PTY would be left that no session owns. Opening is bounded
            # (an SSH session gets service.OPEN_SECONDS); a session opened for a gone socket
            # waits for a reattach like any detached one.
            with anyio.CancelScope(shield=True):
                session = await service.open_session(self.ctx, self.owner, request)
        except AppError as exc:
            await self.send(_session_error(exc.message, exc.code, data))
            return
        await self.send(
            protocol.control(
                "session_created",
                session.id,
                type=session.kind,
                request_id=data.get("request_id"),
            )
        )
        self.attach(session, since=0)

    async def _attach(self, frame: Frame, data: dict[str, Any]) -> None:
        session_id = _session_id(frame, data)
        session = self.ctx.terminals.owned(self.auth.user_id, session_id)
        since = data.get("since")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
            raise FrameError("invalid_since", "since must be an integer offset.", session_id)
        attachment = self.attach(session, since=since)
        await self.send(
            protocol.control(
                "session_attached",
                session.id,
                seq=attachment.cursor,
                lost=attachment.lost,
                output_offset=session.stream.end,
            )
        )

    async def _detach(self, frame: Frame, data: dict[str, Any]) -> None:
        session_id = _session_id(frame, data)
        if session_id not in self.attachments:
            raise FrameError(
                "session_not_attached", "This socket is not attached to it.", session_id
            )
        self.detach(session_id)
        await self.send(protocol.control("session_detached", session_id))

    async def _close_session(self, frame: Frame, data: dict[str, Any]) -> None:
        session = self.ctx.terminals.owned(self.auth.user_id, _session_id(frame, data))
        if session.id not in self.attachments:
            self.tasks.start_soon(self._close_unattached, session)
        else:
            self.tasks.start_soon(session.close, "closed_by_user")

    async def _close_unattached(self, session: TerminalSession) -> None:
        await session.close("closed_by_user")
        await session.closed.wait()
        await self.send(session.closed_frame())

    async def _list(self, frame: Frame, data: dict[str, Any]) -> None:
        sessions = [
            {
                "session_id": s.id,
                "type": s.kind,
                "shell": s.shell,
                "ssh_profile_id": str(s.profile_id) if s.profile_id else None,
                "created_at": s.created_at.isoformat(),
                "attached": len(s.attachments),
                "attached_here": s.id in self.attachments,
                "output_start": s.stream.start,
                "output_offset": s.stream.end,
                "cwd": s.cwd,
            }
            for s in self.ctx.terminals.sessions_of(self.auth.user_id)
        ]
        await self.send(protocol.control("sessions", None, sessions=sessions))

    # Attachments -----------------------------------------------------------------------------

    def attach(self, session: TerminalSession, *, since: int | None) -> Attachment:
        if session.id in self.attachments:
            self.detach(session.id)
        attachment = Attachment(session, self, since)
        self.attachments[session.id] = attachment
        session.attach(attachment)
        self.ctx.terminals.attached(session)
        self.tasks.start_soon(self._stream, attachment)
        return attachment

    async def _stream(self, attachment: Attachment) -> None:
        try:
            await attachment.run()
        finally:
            session = attachment.session
            if self.attachments.get(session.id) is attachment:
                del self.attachments[session.id]
            session.detach(attachment)
            self.ctx.terminals.detached(session)

    def detach(self, session_id: str) -> None:
        attachment = self.attachments.pop(session_id, None)
        if attachment is not None:
            attachment.detach()
            attachment.session.detach(attachment)
            self.ctx.terminals.detached(attachment.session)

    def detach_all(self) -> None:
        for session_id in list(self.attachments):
            self.detach(session_id)


def _session_id(frame: Frame, data: dict[str, Any]) -> str:
    value = data.get("session_id", frame.session_id)
    if not isinstance(value, str) or not value:
        raise FrameError("session_required", "Name the session: data.session_id.")
    return value


def _session_error(message: str, code: str, data: dict[str, Any]) -> str:
    return protocol.control(
        "session_error", None, error=message, code=code, request_id=data.get("request_id")
    )


_ACTIONS: dict[str, Callable[[TerminalConnection, Frame, dict[str, Any]], Awaitable[None]]] = {
    "create_session": TerminalConnection._create,
    "attach_session": TerminalConnection._attach,
    "detach_session": TerminalConnection._detach,
    "close_session": TerminalConnection._close_session,
    "list_sessions": TerminalConnection._list,
}
