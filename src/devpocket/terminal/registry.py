"""Every live session of this server process, by id; created, found, timed out and ended here.

Built in the lifespan. Sessions run in the lifespan's task group; when a session ends its record
is completed in the database and attached sockets are told. A session with no socket attached
ends after the detach timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import structlog
from anyio.abc import TaskGroup

from devpocket import metrics
from devpocket.billing.plans import UNLIMITED, plan_for
from devpocket.errors import NotFound, PermissionDenied, RateLimited
from devpocket.settings import Settings
from devpocket.terminal import shell_integration
from devpocket.terminal.blocks import Block
from devpocket.terminal.launch import (
    LocalSpec,
    base_environment,
    check_env,
    choose_cwd,
    choose_shell,
)
from devpocket.terminal.local import LocalProcess
from devpocket.terminal.process import TerminalProcess
from devpocket.terminal.relay import PtyRelay
from devpocket.terminal.session import SessionKind, SessionOwner, TerminalSession

log = structlog.get_logger(__name__)

Recorder = Callable[[TerminalSession], Awaitable[None]]
BlockRecorder = Callable[[TerminalSession, Block], None]


class SessionLimitReached(RateLimited):
    default_code = "session_limit_reached"


class SessionRegistry:
    def __init__(self, settings: Settings, tasks: TaskGroup, integration_dir: Path) -> None:
        self.settings = settings
        self._tasks = tasks
        self._integration_dir = integration_dir
        self._sessions: dict[str, TerminalSession] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._opening: Counter[uuid.UUID] = Counter()  # sessions being opened, by user
        self.on_start: Recorder | None = None
        self.on_end: Recorder | None = None
        self.on_block: BlockRecorder | None = None
        self.closing = False
        self.relay = PtyRelay()

    @classmethod
    def build(cls, settings: Settings, tasks: TaskGroup) -> SessionRegistry:
        directory = settings.data_dir / "shell-integration"
        shell_integration.write_integration_files(directory)
        return cls(settings, tasks, directory)

    def __len__(self) -> int:
        return len(self._sessions)

    def live_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(session_id) for session_id in self._sessions]

    def sessions_of(self, user_id: uuid.UUID) -> list[TerminalSession]:
        return [s for s in self._sessions.values() if s.owner.user_id == user_id]

    def owned(self, user_id: uuid.UUID, session_id: str) -> TerminalSession:
        """The user's live session; another user's session is as unknown as a missing one."""
        session = self._sessions.get(session_id)
        if session is None or session.owner.user_id != user_id:
            raise NotFound("No such terminal session is running.", code="session_not_found")
        return session

    def get(self, session_id: str) -> TerminalSession | None:
        return self._sessions.get(session_id)

    def user_limit(self, tier: str) -> int:
        limit = plan_for(self.settings, tier).limits.terminal_sessions
        # Unlimited for the plan still stops at what this server runs at once.
        return self.settings.terminal_sessions_max if limit == UNLIMITED else limit

    @contextlib.contextmanager
    def reserve(self, owner: SessionOwner) -> Iterator[None]:
        """A place for a session being opened, counted until it is adopted or fails.

        Opening takes awaits (a shell starting, an SSH login): without the reservation, a burst
        of creates would all pass the limits before any of them counted.
        """
        if self.closing:
            raise RateLimited("The server is shutting down.", retry_after=5, code="server_closing")
        if len(self._sessions) + sum(self._opening.values()) >= self.settings.terminal_sessions_max:
            raise SessionLimitReached(
                "This server runs as many terminal sessions as it can.", retry_after=30
            )
        limit = self.user_limit(owner.tier)
        user = owner.user_id
        if len(self.sessions_of(user)) + self._opening[user] >= limit:
            raise SessionLimitReached(
                f"Your plan allows {limit} terminal sessions at once: close one first.",
                retry_after=60,
            )
        self._opening[user] += 1
        try:
            yield
        finally:
            self._opening[user] -= 1
            if not self._opening[user]:
                del self._opening[user]

    async def create_local(self, owner: SessionOwner, spec: LocalSpec) -> TerminalSession:
        if not self.settings.local_shell_allowed:
            raise PermissionDenied(
                "Local shells are turned off on this server.", code="local_shell_disabled"
            )
        with self.reserve(owner):
            shell = choose_shell(spec.program, self.settings.terminal_shell)
            env = base_environment(shell)
            launch = shell_integration.shell_launch(shell, self._integration_dir)
            env.update(check_env(spec.env))
            env.update(launch.env)
            cwd = choose_cwd(spec.cwd, Path(env["HOME"]))
            process = await LocalProcess.spawn(
                launch.argv, relay=self.relay, env=env, cwd=cwd, cols=spec.cols, rows=spec.rows
            )
            return await self.adopt(owner, "local", process, program=shell)

    async def adopt(
        self,
        owner: SessionOwner,
        kind: SessionKind,
        process: TerminalProcess,
        *,
        program: str | None = None,
        profile_id: uuid.UUID | None = None,
    ) -> TerminalSession:
        """Record a started process as a session, then register and run it.

        The record comes first: a session the database cannot record is ended, not run unseen.
        One that finished opening after shutdown began is ended too: nothing would end it later.
        """
        if self.closing:
            await process.terminate()
            raise RateLimited("The server is shutting down.", retry_after=5, code="server_closing")
        session = TerminalSession(
            owner=owner,
            kind=kind,
            process=process,
            buffer_bytes=self.settings.terminal_buffer_bytes,
            program=program,
            profile_id=profile_id,
            on_block=self.on_block,
        )
        recorded = self.on_start is None
        try:
            if self.on_start is not None:
                await self.on_start(session)
                recorded = True
        finally:
            if not recorded:
                await process.terminate()
        self._sessions[session.id] = session
        metrics.TERMINAL_SESSIONS.labels(kind).inc()
        metrics.TERMINAL_SESSIONS_STARTED.labels(kind).inc()
        session.start()
        self.detached(session)
        self._tasks.start_soon(self._run, session)
        log.info("terminal_session_started", session_id=session.id, kind=kind)
        return session

    async def _run(self, session: TerminalSession) -> None:
        try:
            await session.run()
        finally:
            self._sessions.pop(session.id, None)
            self._cancel_timer(session.id)
            metrics.TERMINAL_SESSIONS.labels(session.kind).dec()
            log.info(
                "terminal_session_ended",
                session_id=session.id,
                exit_code=session.ending.exit_code,
                reason=session.ending.reason,
            )
            try:
                if self.on_end is not None:
                    await self.on_end(session)
            finally:
                session.mark_closed()

    # Detached sessions -----------------------------------------------------------------------

    def attached(self, session: TerminalSession) -> None:
        self._cancel_timer(session.id)

    def detached(self, session: TerminalSession) -> None:
        """Called when a session may have no socket left: start its detach timeout."""
        if session.attachments or session.closed.is_set():
            return
        self._cancel_timer(session.id)
        loop = asyncio.get_running_loop()
        self._timers[session.id] = loop.call_later(
            self.settings.terminal_detach_timeout_seconds, self._expire, session
        )

    def _expire(self, session: TerminalSession) -> None:
        self._timers.pop(session.id, None)
        if not session.attachments:
            self._tasks.start_soon(session.close, "detach_timeout")

    def _cancel_timer(self, session_id: str) -> None:
        timer = self._timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()

    def account_deleted(self, user_id: uuid.UUID) -> None:
        """End every session of a user whose account is gone, on this worker."""
        for session in self.sessions_of(user_id):
            self._tasks.start_soon(session.close, "account_deleted")

    async def close_all(self, reason: str) -> None:
        """End every session (server shutdown), and wait until they are recorded as ended."""
        self.closing = True
        sessions = list(self._sessions.values())
        async with asyncio.TaskGroup() as group:
            for session in sessions:
                group.create_task(session.close(reason))
        for session in sessions:
            await session.closed.wait()
        await self.relay.aclose()
