"""Reading the change feed, and applying the changes a device pushes (docs/sync.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.billing.plans import UNLIMITED, limit_reached, plan_for
from devpocket.context import AppContext
from devpocket.db.models import SyncChange, User
from devpocket.errors import AppError, InvalidInput, NotFound
from devpocket.sync import repository
from devpocket.sync.changes import Origin, announce, lock_feed
from devpocket.sync.push import apply_change, rejected
from devpocket.sync.schemas import (
    ChangeOut,
    ChangePage,
    PushAnswer,
    PushChange,
    PushError,
    PushRequest,
    PushResult,
)


def change_out(change: SyncChange) -> ChangeOut:
    return ChangeOut.model_validate(change, from_attributes=True)


async def changes_since(
    db: AsyncSession,
    user_id: uuid.UUID,
    since: int,
    *,
    limit: int,
    exclude_device: uuid.UUID | None,
) -> ChangePage:
    """A page of the feed after ``since``.

    The head is read first: every cursor up to it is committed (cursors are handed out in
    commit order), so the page is read up to the head and, when it ends there, the answer's
    cursor is the head, past any excluded changes at the end.
    """
    head = await repository.feed_head(db, user_id)
    if since > head:
        raise InvalidInput(
            f"The feed ends at {head}; start again from 0.",
            code="cursor_ahead",
            details={"cursor": head},
        )
    rows = await repository.changes_between(
        db, user_id, after=since, upto=head, limit=limit + 1, exclude_device=exclude_device
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    cursor = rows[-1].cursor if has_more else head
    return ChangePage(changes=[change_out(r) for r in rows], cursor=cursor, has_more=has_more)


async def push(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, request: PushRequest
) -> PushAnswer:
    """Apply a device's changes in this transaction; each one's answer is kept for repeats."""
    if not await repository.owns_device(db, user_id, request.device_id):
        raise NotFound(
            "This device is not one of yours: sign in on it first.", code="device_not_found"
        )
    await _check_device_allowed(db, ctx, user_id, request.device_id)
    await lock_feed(db, user_id)  # before the savepoints, held to the end
    head = await repository.feed_head(db, user_id)
    ids = [_change_id(raw) for raw in request.changes]
    seen = await repository.applied_results(db, user_id, [i for i in ids if i is not None])
    results, answered = [], {}
    for raw, change_id in zip(request.changes, ids, strict=True):
        result = await _push_one(db, ctx, user_id, request.device_id, raw, head, seen)
        if change_id is not None and change_id not in seen:
            seen[change_id] = answered[change_id] = result.model_dump(mode="json")
        results.append(result)
    await repository.keep_results(db, user_id, answered)
    cursor = await repository.feed_head(db, user_id)
    if cursor != head:
        announce(db, user_id, cursor, request.device_id)
    return PushAnswer(results=results, cursor=cursor)


async def _check_device_allowed(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, device_id: uuid.UUID
) -> None:
    """The plan's ``multi_device``: the user's first devices (by sign-in) may push, others not."""
    user = await db.get(User, user_id)
    plan = plan_for(ctx.settings, user.subscription_tier if user else "free")
    allowed = plan.limits.multi_device
    if allowed == UNLIMITED:
        return
    syncing = await repository.first_devices(db, user_id, max(allowed, 0))
    if device_id not in syncing:
        raise limit_reached(
            plan,
            "multi_device",
            await repository.count_devices(db, user_id),
            code="sync_device_limit_reached",
            message=f"The {plan.name} plan syncs {allowed} devices: sign out on another device "
            "or upgrade.",
        )


def _change_id(raw: dict[str, Any]) -> uuid.UUID | None:
    value = raw.get("change_id", raw.get("changeId"))
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _push_one(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    device_id: uuid.UUID,
    raw: dict[str, Any],
    head: int,
    seen: dict[uuid.UUID, dict[str, Any]],
) -> PushResult:
    try:
        change = PushChange.model_validate(raw)
    except ValidationError as error:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        problem = PushError(
            code="invalid_change", message="The change is malformed.", details=details
        )
        return PushResult(change_id=str(raw.get("change_id")), status="rejected", error=problem)
    first = seen.get(change.change_id)
    if first is not None:
        return PushResult.model_validate(
            {**first, "status": "duplicate", "first_status": first["status"]}
        )
    origin = Origin(device_id, min(change.changed_at, datetime.now(UTC)), change.change_id)
    try:
        async with db.begin_nested():
            return await apply_change(db, ctx, user_id, change, origin, head)
    except AppError as error:
        # The savepoint is gone with whatever the change had done: the batch goes on.
        problem = PushError(code=error.code, message=error.message, details=error.details)
        return rejected(change, problem)
