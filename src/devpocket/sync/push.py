"""One pushed change: the server's side, the merge decision, carrying it out, the answer."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.context import AppContext
from devpocket.errors import InvalidInput
from devpocket.sync import merge, repository
from devpocket.sync.apply import APPLIERS, Applier, Row
from devpocket.sync.changes import Origin
from devpocket.sync.schemas import FieldConflictOut, PushChange, PushError, PushResult, PushStatus

_REJECTIONS = {
    "entity_deleted": "It was deleted after the version this change is based on.",
}


async def apply_change(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    change: PushChange,
    origin: Origin,
    head: int,
) -> PushResult:
    """Decide by the merge rules and carry the decision out through the entity's services."""
    if change.base_version > head:
        raise InvalidInput(f"The feed ends at {head}.", code="base_version_ahead")
    applier = APPLIERS[change.entity]
    row = await applier.load(db, user_id, change.entity_id)
    server = await _server_state(db, applier, user_id, change, row)
    client = merge.ClientChange(
        change.op,
        change.base_version,
        merge.Stamp(0, origin.changed_at, str(origin.device_id), str(origin.change_id)),
        applier.normalize(change.data) if change.op == "upsert" else {},
    )
    base = await _base(db, user_id, change, server) if row is not None else None
    decision = merge.decide(server, client, base)
    if decision.status == "rejected":
        reason = decision.reason or "rejected"
        problem = PushError(code=reason, message=_REJECTIONS.get(reason, "Not applied."))
        return rejected(change, problem, version=server.version, server=_state_out(server))
    row = await _execute(db, ctx, applier, user_id, change, row, decision, origin)
    await _restamp(db, user_id, change, decision.restamp, client.stamp)
    return await _answer(db, applier, user_id, change, server, row, decision)


async def _answer(
    db: AsyncSession,
    applier: Applier,
    user_id: uuid.UUID,
    change: PushChange,
    server: merge.ServerState,
    row: Row,
    decision: merge.Decision,
) -> PushResult:
    state = await repository.entity_state(db, user_id, change.entity, change.entity_id)
    differed = decision.status != "applied"
    return PushResult(
        change_id=str(change.change_id),
        status=decision.status,
        entity=change.entity,
        entity_id=change.entity_id,
        version=state.version if state else server.version,
        server=_state_out(server) if differed else None,
        client=change.data if differed else None,
        resolved=applier.snapshot(row) if row is not None else None,
        conflicts=[FieldConflictOut(**asdict(c)) for c in decision.conflicts],
    )


def rejected(
    change: PushChange,
    problem: PushError,
    *,
    version: int | None = None,
    server: dict[str, Any] | None = None,
) -> PushResult:
    status: PushStatus = "rejected"
    return PushResult(
        change_id=str(change.change_id),
        status=status,
        entity=change.entity,
        entity_id=change.entity_id,
        version=version,
        server=server,
        client=change.data,
        error=problem,
    )


def _state_out(server: merge.ServerState) -> dict[str, Any] | None:
    return dict(server.data) if server.exists else None


async def _server_state(
    db: AsyncSession, applier: Applier, user_id: uuid.UUID, change: PushChange, row: Row
) -> merge.ServerState:
    state = await repository.entity_state(db, user_id, change.entity, change.entity_id)
    stamps = {
        name: merge.Stamp(
            int(value["cursor"]),
            _parse_time(value["changed_at"]),
            value.get("device_id"),
            value.get("change_id"),
        )
        for name, value in (state.field_versions if state else {}).items()
    }
    return merge.ServerState(
        exists=row is not None,
        deleted=bool(state and state.deleted),
        version=state.version if state else 0,
        data=applier.snapshot(row) if row is not None else {},
        stamps=stamps,
    )


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def _base(
    db: AsyncSession, user_id: uuid.UUID, change: PushChange, server: merge.ServerState
) -> dict[str, Any] | None:
    """The entity as the device last saw it: now, or as of its base version in the feed."""
    if change.base_version >= server.version:
        return dict(server.data)
    return await repository.snapshot_at(
        db, user_id, change.entity, change.entity_id, change.base_version
    )


async def _execute(
    db: AsyncSession,
    ctx: AppContext,
    applier: Applier,
    user_id: uuid.UUID,
    change: PushChange,
    row: Row,
    decision: merge.Decision,
    origin: Origin,
) -> Row:
    """The row after the decision (None once deleted)."""
    if decision.action == "create":
        return await applier.create(db, ctx, user_id, change.entity_id, decision.writes, origin)
    if decision.action == "delete":
        await applier.delete(db, row, origin)
        return None
    if decision.action == "update" and decision.writes:
        await applier.update(db, ctx, row, decision.writes, origin)
    return row


async def _restamp(
    db: AsyncSession, user_id: uuid.UUID, change: PushChange, fields: list[str], stamp: merge.Stamp
) -> None:
    """Make the client the last writer of fields it won with the value they already had."""
    if not fields:
        return
    state = await repository.entity_state(db, user_id, change.entity, change.entity_id)
    if state is None:
        return
    stamps = dict(state.field_versions)
    for name in fields:
        stamps[name] = {
            **stamps[name],
            "changed_at": stamp.changed_at.astimezone(UTC).isoformat(),
            "device_id": stamp.device_id,
            "change_id": stamp.change_id,
        }
    state.field_versions = stamps
