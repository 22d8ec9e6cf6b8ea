"""Keeping the database's view of terminal sessions current, off the output path.

A session's record is written when it starts and completed when it ends; each finished command
block becomes a command-history entry. Blocks go through a bounded queue to one writer task, so a
slow database never stalls a terminal (when the queue is full, blocks are dropped and counted).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.db.models import CommandHistory
from devpocket.db.models import TerminalSession as SessionRecord
from devpocket.history.redaction import redact
from devpocket.sync.changes import lock_feed
from devpocket.sync.entities import record_history
from devpocket.terminal import repository
from devpocket.terminal.blocks import Block
from devpocket.terminal.registry import SessionRegistry
from devpocket.terminal.session import TerminalSession

log = structlog.get_logger(__name__)

ALIVE_EVERY = timedelta(seconds=60)
LOST_AFTER = timedelta(minutes=3)
# The end of a block's output is kept with it (errors come last), without terminal escapes.
BLOCK_OUTPUT_CHARS = 32 * 1024
# Escapes make raw output longer than its text: enough raw tail for the text kept.
_TAIL_BYTES = 4 * BLOCK_OUTPUT_CHARS
_QUEUE = 1024
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b[@-Z\\-_]"
)


def plain_output(text: str) -> str:
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "")
    return text[-BLOCK_OUTPUT_CHARS:]


def result_type(exit_code: int | None) -> str:
    if exit_code is None:
        return "info"
    return "success" if exit_code == 0 else "error"


@dataclass(frozen=True, slots=True)
class _BlockEntry:
    session: TerminalSession
    block: Block
    output: str


class SessionRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._queue: asyncio.Queue[_BlockEntry] = asyncio.Queue(_QUEUE)
        self.dropped = 0

    def connect(self, registry: SessionRegistry) -> None:
        registry.on_start = self.started
        registry.on_end = self.ended
        registry.on_block = self.block

    async def started(self, session: TerminalSession) -> None:
        async with self._sessionmaker() as db:
            db.add(
                SessionRecord(
                    id=uuid.UUID(session.id),
                    user_id=session.owner.user_id,
                    type=session.kind,
                    ssh_profile_id=session.profile_id,
                    shell=session.shell,  # nosec B604 - a column, not a shell flag
                    status="active",
                    created_at=session.created_at,
                    last_activity=session.created_at,
                    seen_at=session.created_at,
                )
            )
            await db.commit()

    async def ended(self, session: TerminalSession) -> None:
        try:
            await self._end_record(session)
        except (SQLAlchemyError, OSError):
            log.exception("terminal_session_record_failed", session_id=session.id)

    async def _end_record(self, session: TerminalSession) -> None:
        async with self._sessionmaker() as db:
            record = await db.get(SessionRecord, uuid.UUID(session.id))
            if record is None:
                return  # the user was deleted while the session ran
            record.status = "ended"
            record.ended_at = session.ending.ended_at
            record.exit_code = session.ending.exit_code
            record.end_reason = session.ending.reason
            record.bytes_in = session.counters.bytes_in
            record.bytes_out = session.counters.bytes_out
            record.last_activity = session.counters.last_activity
            await db.commit()

    def block(self, session: TerminalSession, block: Block) -> None:
        """Queue a finished block; called on the output path, so only its tail is copied here."""
        end = block.output_end or block.output_start
        begin = max(block.output_start, end - _TAIL_BYTES)
        try:
            self._queue.put_nowait(_BlockEntry(session, block, session.stream.text(begin, end)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self, registry: SessionRegistry) -> None:
        """Write blocks as they come; vouch for live sessions and end lost ones every minute."""
        loop = asyncio.get_running_loop()
        next_alive = loop.time()
        while True:
            timeout = max(next_alive - loop.time(), 0)
            try:
                async with asyncio.timeout(timeout):
                    entry = await self._queue.get()
                await self._write_blocks([entry, *self._take_waiting()])
            except TimeoutError:
                await self._vouch(registry)
                next_alive = loop.time() + ALIVE_EVERY.total_seconds()

    def _take_waiting(self) -> list[_BlockEntry]:
        entries: list[_BlockEntry] = []
        while not self._queue.empty() and len(entries) < 200:
            entries.append(self._queue.get_nowait())
        return entries

    async def _write_blocks(self, entries: list[_BlockEntry]) -> None:
        try:
            # Cleaning and redacting output is CPU work: off the event loop, where keystrokes wait.
            rows = await asyncio.to_thread(_history_entries, entries)
            # One user after another: every sync writer locks users' feeds in one order.
            rows.sort(key=lambda row: row.user_id)
            async with self._sessionmaker() as db:
                # The feed locks before the rows, as every sync writer takes them: a new row
                # holds its profile and device (foreign-key checks), which a writer holding
                # the lock may be deleting.
                for user_id in dict.fromkeys(row.user_id for row in rows):
                    await lock_feed(db, user_id)
                db.add_all(rows)
                await db.flush()
                for row in rows:
                    await record_history(db, row, None, None)  # other devices see the command
                await db.commit()
        except (SQLAlchemyError, OSError):
            # A user deleted meanwhile, or the database away: these blocks are lost, not the server.
            self.dropped += len(entries)
            log.exception("terminal_blocks_not_recorded", count=len(entries))

    async def flush(self) -> None:
        """Write what is queued (at shutdown, after the sessions have ended)."""
        entries = self._take_waiting()
        while entries:
            await self._write_blocks(entries)
            entries = self._take_waiting()

    async def _vouch(self, registry: SessionRegistry) -> None:
        now = datetime.now(UTC)
        try:
            async with self._sessionmaker() as db:
                await repository.mark_alive(db, registry.live_ids(), now)
                lost = await repository.end_lost(db, now - LOST_AFTER, now)
                await db.commit()
        except (SQLAlchemyError, OSError):
            log.exception("terminal_sessions_not_vouched")
            return
        if lost:
            log.warning("terminal_sessions_lost", count=lost)


def _history_entries(entries: list[_BlockEntry]) -> list[CommandHistory]:
    return [_history_entry(entry) for entry in entries]


def _history_entry(entry: _BlockEntry) -> CommandHistory:
    block, session = entry.block, entry.session
    return CommandHistory(
        id=block.id,
        user_id=session.owner.user_id,
        # Secrets typed on the line never reach the database (history/redaction.py).
        command=redact(block.command or ""),
        output=redact(plain_output(entry.output)),
        result_type=result_type(block.exit_code),
        exit_code=block.exit_code,
        execution_time_ms=block.duration_ms,
        session_id=session.id,
        working_directory=block.cwd,
        shell_type=session.shell.rsplit("/", 1)[-1] if session.shell else session.kind,
        executed_at=block.started_at,
        ssh_profile_id=session.profile_id,
        device_id=session.owner.device_id,
        output_start=block.output_start,
        output_end=block.output_end,
    )
