"""Command history rules: ownership, idempotent creates, redaction on every write, tags, stats."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import CommandHistory
from devpocket.errors import Conflict, InvalidInput, NotFound
from devpocket.history import repository, search
from devpocket.history.redaction import redact, redact_optional
from devpocket.history.schemas import (
    MAX_TAGS,
    RESULT_TYPES,
    BulkDeleteQuery,
    CommandCount,
    CommandCreate,
    CommandFields,
    CommandList,
    CommandOut,
    HistoryStats,
    ListQuery,
    RecentCommands,
)
from devpocket.sync.changes import Origin, lock_feed
from devpocket.sync.entities import history_data, record_delete, record_history

# A null sent for these is ignored (the column has no empty state); for the others it clears.
_REQUIRED_FIELDS = ("command", "result_type", "executed_at", "is_favorite", "tags")
_OPTIONAL_FIELDS = (
    "output", "exit_code", "execution_time_ms", "session_id", "working_directory", "shell_type",
)  # fmt: skip
_STATS_SESSIONS = 50
_STATS_TOP = 10


def entry_out(entry: CommandHistory) -> CommandOut:
    return CommandOut(
        id=entry.id,
        command=entry.command,
        output=entry.output,
        result_type=entry.result_type,
        exit_code=entry.exit_code,
        execution_time_ms=entry.execution_time_ms,
        session_id=entry.session_id,
        working_directory=entry.working_directory,
        shell_type=entry.shell_type,
        executed_at=entry.executed_at,
        ssh_profile_id=entry.ssh_profile_id,
        is_favorite=entry.is_favorite,
        tags=list(entry.tags or []),
        device_id=entry.device_id,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


async def list_entries(db: AsyncSession, user_id: uuid.UUID, query: ListQuery) -> CommandList:
    entries, total = await repository.list_entries(db, user_id, query)
    return CommandList(commands=[entry_out(e) for e in entries], total=total)


async def search_entries(
    db: AsyncSession, user_id: uuid.UUID, text: str, *, limit: int, offset: int
) -> CommandList:
    entries, total = await search.search_entries(db, user_id, text, limit=limit, offset=offset)
    return CommandList(commands=[entry_out(e) for e in entries], total=total)


async def recent_entries(db: AsyncSession, user_id: uuid.UUID, limit: int) -> RecentCommands:
    entries = await repository.recent_entries(db, user_id, limit)
    return RecentCommands(commands=[entry_out(e) for e in entries])


async def owned_entry(db: AsyncSession, user_id: uuid.UUID, entry_id: uuid.UUID) -> CommandHistory:
    """The user's entry; another user's is as unknown as a missing one (404)."""
    entry = await repository.get_entry(db, entry_id)
    if entry is None or entry.user_id != user_id:
        raise _unknown_entry()
    return entry


def _unknown_entry() -> NotFound:
    return NotFound("No such command in your history.", code="command_not_found")


async def _locked_before(db: AsyncSession, entry: CommandHistory) -> dict[str, Any]:
    """Before changing an entry: take the feed lock first (the order every sync writer uses, so
    none deadlocks with a push), reload the entry as committed, and snapshot it. An entry
    deleted while this request waited for the lock is as unknown as a missing one (404)."""
    if await lock_feed(db, entry.user_id) and await repository.current_entry(db, entry.id) is None:
        raise _unknown_entry()
    return history_data(entry)


async def create_entry(
    db: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID | None, data: CommandCreate
) -> tuple[CommandHistory, bool]:
    """Record a command; a repeat with the device's own ``id`` updates it. True when created."""
    # The feed lock first: a retried POST racing its first attempt then finds its entry.
    await lock_feed(db, user_id)
    if data.id is not None:
        existing = await repository.get_entry(db, data.id)
        if existing is not None:
            if existing.user_id != user_id:
                raise Conflict("This command id is already in use.", code="command_id_taken")
            return await update_entry(db, existing, data, origin=Origin.now(device_id)), False
    now = datetime.now(UTC)
    entry = CommandHistory(
        id=data.id or uuid.uuid4(),
        user_id=user_id,
        result_type="info",
        executed_at=now,
        is_favorite=False,
        tags=[],
        device_id=device_id,
        created_at=now,
        updated_at=now,
    )
    db.add(entry)
    await _apply(db, entry, data)
    await db.flush()
    await record_history(db, entry, None, Origin.now(device_id))
    return entry, True


async def update_entry(
    db: AsyncSession, entry: CommandHistory, data: CommandFields, *, origin: Origin | None = None
) -> CommandHistory:
    before = await _locked_before(db, entry)
    await _apply(db, entry, data)
    entry.updated_at = datetime.now(UTC)
    await db.flush()
    await record_history(db, entry, before, origin)
    return entry


async def _apply(db: AsyncSession, entry: CommandHistory, data: CommandFields) -> None:
    sent = data.model_fields_set
    for field in _REQUIRED_FIELDS:
        value = getattr(data, field)
        if field in sent and value is not None:
            setattr(entry, field, value)
    for field in _OPTIONAL_FIELDS:
        if field in sent:
            setattr(entry, field, getattr(data, field))
    # Secrets typed on the line never reach the database (redaction.py).
    entry.command = redact(entry.command)
    entry.output = redact_optional(entry.output)
    if "ssh_profile_id" in sent:
        entry.ssh_profile_id = await _owned_or_none(
            repository.owns_profile, db, entry.user_id, data.ssh_profile_id
        )
    if "device_id" in sent:
        entry.device_id = await _owned_or_none(
            repository.owns_device, db, entry.user_id, data.device_id
        )


async def _owned_or_none(
    owns: Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[bool]],
    db: AsyncSession,
    user_id: uuid.UUID,
    target: uuid.UUID | None,
) -> uuid.UUID | None:
    """A profile or device of the user's, else nothing: a device may report a host it has not
    synced, or one deleted since (what the foreign key's SET NULL records too)."""
    if target is None:
        return None
    return target if await owns(db, user_id, target) else None


async def delete_entry(
    db: AsyncSession, entry: CommandHistory, *, origin: Origin | None = None
) -> None:
    await _locked_before(db, entry)
    await db.delete(entry)
    await db.flush()
    await record_delete(db, "history", entry.user_id, entry.id, origin)


async def delete_ids(
    db: AsyncSession, user_id: uuid.UUID, ids: list[uuid.UUID], *, origin: Origin | None = None
) -> int:
    """Delete those of ``ids`` that are the user's; others are skipped, not refused."""
    # The feed lock before the rows, as every sync writer takes them: a push holding the lock
    # while it changes the same rows would otherwise deadlock with this delete.
    await lock_feed(db, user_id)
    deleted = await repository.delete_ids(db, user_id, list(dict.fromkeys(ids)))
    return await _record_deletes(db, user_id, deleted, origin)


async def _record_deletes(
    db: AsyncSession, user_id: uuid.UUID, deleted: list[uuid.UUID], origin: Origin | None
) -> int:
    """Tombstones in the sync feed, so that other devices drop the entries too."""
    for entry_id in deleted:
        await record_delete(db, "history", user_id, entry_id, origin)
    return len(deleted)


async def delete_matching(
    db: AsyncSession, user_id: uuid.UUID, query: BulkDeleteQuery, *, origin: Origin | None = None
) -> int:
    if query.before is None and query.session_id is None:
        raise InvalidInput(
            "Name what to delete: `before` (a date) or `session_id`, or both.",
            code="delete_filter_required",
        )
    await lock_feed(db, user_id)  # before the rows, as in delete_ids
    deleted = await repository.delete_matching(
        db, user_id, before=query.before, session_id=query.session_id
    )
    return await _record_deletes(db, user_id, deleted, origin)


async def set_favorite(
    db: AsyncSession, entry: CommandHistory, value: bool | None, *, origin: Origin | None = None
) -> None:
    """Set the mark, or toggle it when ``value`` is None."""
    before = await _locked_before(db, entry)
    entry.is_favorite = (not entry.is_favorite) if value is None else value
    entry.updated_at = datetime.now(UTC)
    await db.flush()
    await record_history(db, entry, before, origin)


async def add_tags(
    db: AsyncSession, entry: CommandHistory, tags: list[str], *, origin: Origin | None = None
) -> None:
    before = await _locked_before(db, entry)
    merged = list(dict.fromkeys([*(entry.tags or []), *tags]))
    if len(merged) > MAX_TAGS:
        raise InvalidInput(f"An entry has at most {MAX_TAGS} tags.", code="too_many_tags")
    await _set_tags(db, entry, merged, before, origin)


async def remove_tags(
    db: AsyncSession, entry: CommandHistory, tags: list[str], *, origin: Origin | None = None
) -> None:
    before = await _locked_before(db, entry)
    unwanted = set(tags)
    kept = [tag for tag in entry.tags or [] if tag not in unwanted]
    await _set_tags(db, entry, kept, before, origin)


async def _set_tags(
    db: AsyncSession,
    entry: CommandHistory,
    tags: list[str],
    before: dict[str, object],
    origin: Origin | None,
) -> None:
    # A new list, not the same one changed: the JSON column notices assignment only.
    entry.tags = tags
    entry.updated_at = datetime.now(UTC)
    await db.flush()
    await record_history(db, entry, before, origin)


async def stats(db: AsyncSession, user_id: uuid.UUID) -> HistoryStats:
    """The figures of ``GET /history/stats``, each from an aggregate query."""
    by_type = await repository.totals_by_type(db, user_id)
    counts: dict[str, int] = dict.fromkeys(RESULT_TYPES, 0)
    counts.update({str(row.result_type): int(row.count) for row in by_type})
    time_sum = sum(int(row.time_sum or 0) for row in by_type)
    timed = sum(int(row.timed) for row in by_type)
    devices = await repository.counts_by(db, user_id, CommandHistory.device_id)
    sessions = await repository.counts_by(
        db, user_id, CommandHistory.session_id, limit=_STATS_SESSIONS
    )
    top = await repository.counts_by(db, user_id, CommandHistory.command, limit=_STATS_TOP)
    return HistoryStats(
        total_commands=sum(counts.values()),
        successful_commands=counts["success"],
        failed_commands=counts["error"],
        favorite_commands=sum(int(row.favorites or 0) for row in by_type),
        commands_by_type=counts,
        commands_by_device={str(device): n for device, n in devices},
        commands_by_session={str(session): n for session, n in sessions},
        first_command_at=min((r.first for r in by_type if r.first is not None), default=None),
        last_command_at=max((r.last for r in by_type if r.last is not None), default=None),
        average_execution_time_ms=round(time_sum / timed, 1) if timed else 0.0,
        top_commands=[CommandCount(command=str(c), count=n) for c, n in top],
        recent_working_directories=await repository.recent_directories(db, user_id, 10),
    )
