"""``/api/v1/history``: the user's commands from every device and terminal session.

Literal paths (``/commands/bulk-delete``, ``/stats``, ``/search``, ``/recent``, ``/export``) are
declared before ``/commands/{entry_id}`` so that none is taken for an id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, Query, Response
from fastapi.responses import StreamingResponse

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.history import export, service
from devpocket.history.schemas import (
    MAX_PAGE,
    BulkDelete,
    BulkDeleteQuery,
    CommandCreate,
    CommandFields,
    CommandList,
    CommandOut,
    Deleted,
    ExportQuery,
    FavoriteRequest,
    HistoryStats,
    ListQuery,
    RecentCommands,
    TagsRequest,
)
from devpocket.sync.changes import Origin

router = make_router(f"{API_PREFIX}/history", "history", responses=error_responses(401, 422))
_OWNED = error_responses(404)
_EXPORT_JSON = {
    "type": "object",
    "required": ["success", "data", "message"],
    "properties": {
        "success": {"const": True},
        "data": {
            "type": "object",
            "required": ["commands"],
            "properties": {
                "commands": {"type": "array", "items": {"$ref": "#/components/schemas/CommandOut"}}
            },
        },
        "message": {"type": "null"},
    },
}
_EXPORT_CONTENT = {
    "application/json": {"schema": _EXPORT_JSON},
    "text/csv": {"schema": {"type": "string"}},
}


@router.get("/commands", summary="The user's commands, filtered, sorted and paged")
async def list_commands(
    query: Annotated[ListQuery, Query()], auth: CurrentAuth, db: DbSession
) -> Envelope[CommandList]:
    return ok(await service.list_entries(db, auth.user_id, query))


@router.post(
    "/commands",
    status_code=201,
    responses=error_responses(409),
    summary="Record a command; a repeat with the device's own id updates it (200)",
)
async def create_command(
    data: CommandCreate, auth: CurrentAuth, db: DbSession, response: Response
) -> Envelope[CommandOut]:
    entry, created = await service.create_entry(db, auth.user_id, auth.device_id, data)
    if not created:
        response.status_code = 200
    return ok(service.entry_out(entry))


@router.delete(
    "/commands",
    responses=error_responses(400),
    summary="Delete the commands run before a date, or of a session (or both conditions)",
)
async def delete_commands(
    query: Annotated[BulkDeleteQuery, Query()], auth: CurrentAuth, db: DbSession
) -> Envelope[Deleted]:
    deleted = await service.delete_matching(
        db, auth.user_id, query, origin=Origin.now(auth.device_id)
    )
    return ok(Deleted(deleted=deleted), f"{deleted} command(s) deleted.")


@router.post("/commands/bulk-delete", summary="Delete commands by id (others' ids are skipped)")
async def bulk_delete_commands(
    data: BulkDelete, auth: CurrentAuth, db: DbSession
) -> Envelope[Deleted]:
    deleted = await service.delete_ids(
        db, auth.user_id, data.ids, origin=Origin.now(auth.device_id)
    )
    return ok(Deleted(deleted=deleted), f"{deleted} command(s) deleted.")


@router.get("/stats", summary="Counts, timings, top commands and recent directories")
async def get_stats(auth: CurrentAuth, db: DbSession) -> Envelope[HistoryStats]:
    return ok(await service.stats(db, auth.user_id))


@router.get("/search", summary="Full-text search of commands and directories, best match first")
async def search_commands(
    auth: CurrentAuth,
    db: DbSession,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words; prefixes match")],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Envelope[CommandList]:
    return ok(await service.search_entries(db, auth.user_id, q, limit=limit, offset=offset))


@router.get("/recent", summary="The latest commands, most recent first")
async def recent_commands(
    auth: CurrentAuth, db: DbSession, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Envelope[RecentCommands]:
    return ok(await service.recent_entries(db, auth.user_id, limit))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"description": "A file download", "content": _EXPORT_CONTENT}},
    summary="Download the commands (the list's filters apply) as JSON or CSV",
    description=(
        "A file (`Content-Disposition: attachment`), oldest entry first. `format=json` (default) "
        'is the envelope of every JSON answer, `{"success": true, "data": {"commands": '
        '[...]}, "message": null}`, each entry as `GET /history/commands/{id}` answers it. '
        "`format=csv` is a CSV file with a header row of the entry keys."
    ),
)
async def export_commands(
    query: Annotated[ExportQuery, Query()], auth: CurrentAuth, ctx: Ctx
) -> StreamingResponse:
    name = export.filename(query.format, datetime.now(UTC))
    return StreamingResponse(
        export.stream(ctx.sessionmaker, auth.user_id, query, query.format),
        media_type=export.MEDIA_TYPES[query.format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/commands/{entry_id}", responses=_OWNED, summary="One command")
async def get_command(
    entry_id: uuid.UUID, auth: CurrentAuth, db: DbSession
) -> Envelope[CommandOut]:
    return ok(service.entry_out(await service.owned_entry(db, auth.user_id, entry_id)))


@router.put(
    "/commands/{entry_id}", responses=_OWNED, summary="Change a command (only the keys sent)"
)
async def update_command(
    entry_id: uuid.UUID, data: CommandFields, auth: CurrentAuth, db: DbSession
) -> Envelope[CommandOut]:
    entry = await service.owned_entry(db, auth.user_id, entry_id)
    origin = Origin.now(auth.device_id)
    return ok(service.entry_out(await service.update_entry(db, entry, data, origin=origin)))


@router.delete("/commands/{entry_id}", responses=_OWNED, summary="Delete a command")
async def delete_command(entry_id: uuid.UUID, auth: CurrentAuth, db: DbSession) -> Envelope[None]:
    entry = await service.owned_entry(db, auth.user_id, entry_id)
    await service.delete_entry(db, entry, origin=Origin.now(auth.device_id))
    return ok(None, "Command deleted.")


@router.post(
    "/commands/{entry_id}/favorite",
    responses=_OWNED,
    summary="Toggle the favorite mark, or set it with {is_favorite}",
)
async def favorite_command(
    entry_id: uuid.UUID,
    auth: CurrentAuth,
    db: DbSession,
    data: Annotated[FavoriteRequest | None, Body()] = None,
) -> Envelope[CommandOut]:
    entry = await service.owned_entry(db, auth.user_id, entry_id)
    value = data.is_favorite if data else None
    await service.set_favorite(db, entry, value, origin=Origin.now(auth.device_id))
    return ok(service.entry_out(entry))


@router.post(
    "/commands/{entry_id}/tags",
    responses=error_responses(400, 404),
    summary="Add tags (stripped, lowercase, at most 20 of 50 characters)",
)
async def add_tags(
    entry_id: uuid.UUID, data: TagsRequest, auth: CurrentAuth, db: DbSession
) -> Envelope[CommandOut]:
    entry = await service.owned_entry(db, auth.user_id, entry_id)
    await service.add_tags(db, entry, data.tags, origin=Origin.now(auth.device_id))
    return ok(service.entry_out(entry))


@router.delete("/commands/{entry_id}/tags", responses=_OWNED, summary="Remove tags")
async def remove_tags(
    entry_id: uuid.UUID, data: TagsRequest, auth: CurrentAuth, db: DbSession
) -> Envelope[CommandOut]:
    entry = await service.owned_entry(db, auth.user_id, entry_id)
    await service.remove_tags(db, entry, data.tags, origin=Origin.now(auth.device_id))
    return ok(service.entry_out(entry))
