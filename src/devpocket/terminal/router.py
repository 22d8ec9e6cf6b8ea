"""``/api/v1/terminal``: session records, their commands and stats; and ``/ws/terminal``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.terminal import repository, service
from devpocket.terminal.schemas import SessionCreate, SessionList, SessionOut, TerminalStats
from devpocket.terminal.session import SessionOwner
from devpocket.terminal.websocket import terminal_socket

router = make_router(f"{API_PREFIX}/terminal", "terminal", responses=error_responses(401))
socket_router = APIRouter()
socket_router.add_api_websocket_route("/ws/terminal", terminal_socket, name="terminal_socket")


@router.get("/sessions", summary="The user's terminal sessions, newest first")
async def list_sessions(
    auth: CurrentAuth,
    db: DbSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Envelope[SessionList]:
    return ok(await service.list_sessions(db, ctx, auth.user_id, limit=limit, offset=offset))


@router.post(
    "/sessions",
    responses=error_responses(400, 403, 404, 422, 429, 502, 504),
    summary="Start a session (attach to it over /ws/terminal with attach_session)",
)
async def create_session(
    body: SessionCreate, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[SessionOut]:
    owner = SessionOwner(auth.user_id, auth.device_id, auth.profile.subscription_tier)
    session = await service.open_session(ctx, owner, body)
    record = await service.session_record(db, auth.user_id, uuid.UUID(session.id))
    return ok(service.session_out(record, session))


@router.delete(
    "/sessions/{session_id}",
    responses=error_responses(404),
    summary="End a session; the answer is its final record",
)
async def delete_session(
    session_id: uuid.UUID, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[SessionOut]:
    return ok(await service.close_session(db, ctx, auth.user_id, session_id))


@router.get(
    "/sessions/{session_id}/history",
    responses=error_responses(404),
    summary="The command lines run in a session, oldest first",
)
async def session_history(
    session_id: uuid.UUID,
    auth: CurrentAuth,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Envelope[list[str]]:
    await service.session_record(db, auth.user_id, session_id)
    return ok(await repository.commands_of_session(db, auth.user_id, str(session_id), limit=limit))


@router.get("/stats", summary="Counts over the user's terminal sessions and their commands")
async def stats(auth: CurrentAuth, db: DbSession, ctx: Ctx) -> Envelope[TerminalStats]:
    return ok(await service.stats(db, ctx, auth.user_id))
