"""``/api/v1/sync``: the change feed, pushes, server-sent notices; and ``/ws/sync``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.sync import service
from devpocket.sync.events import event_stream
from devpocket.sync.schemas import ChangePage, PushAnswer, PushRequest
from devpocket.sync.websocket import sync_socket

router = make_router(f"{API_PREFIX}/sync", "sync", responses=error_responses(401, 422))
socket_router = APIRouter()
socket_router.add_api_websocket_route("/ws/sync", sync_socket, name="sync_socket")


@router.get(
    "/changes",
    responses=error_responses(400),
    summary="The user's changes after a cursor, oldest first (since=0: from the start)",
)
async def list_changes(
    auth: CurrentAuth,
    db: DbSession,
    since: Annotated[int, Query(ge=0, description="The cursor of the last change seen.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    exclude_device: Annotated[
        uuid.UUID | None, Query(description="Leave out this device's own changes.")
    ] = None,
) -> Envelope[ChangePage]:
    page = await service.changes_since(
        db, auth.user_id, since, limit=limit, exclude_device=exclude_device
    )
    return ok(page)


@router.post(
    "/push",
    responses=error_responses(400, 404),
    summary="Apply a device's changes; conflicts are resolved by the documented rules",
)
async def push_changes(
    data: PushRequest, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[PushAnswer]:
    return ok(await service.push(db, ctx, auth.user_id, data))


@router.get(
    "/events",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    summary="Server-sent events: `sync` {cursor, device_id} when changes are waiting",
)
async def events(
    auth: CurrentAuth,
    ctx: Ctx,
    device_id: Annotated[
        uuid.UUID | None, Query(description="This device: its own changes are not announced.")
    ] = None,
) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        event_stream(ctx, auth, device_id), media_type="text/event-stream", headers=headers
    )
