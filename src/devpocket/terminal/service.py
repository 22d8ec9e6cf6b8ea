"""Opening terminal sessions, and what the REST API reports about them."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.context import AppContext
from devpocket.db.models import SshProfile
from devpocket.db.models import TerminalSession as SessionRecord
from devpocket.errors import InvalidInput, NotFound
from devpocket.ssh import probe
from devpocket.ssh.connect import ConnectionReport, SSHConnectError, Target
from devpocket.ssh.profile_service import owned_profile
from devpocket.ssh.schemas import ConnectionTestRequest
from devpocket.terminal import repository
from devpocket.terminal.launch import LocalSpec
from devpocket.terminal.remote import RemoteProcess
from devpocket.terminal.schemas import (
    CommandCount,
    InlineProfile,
    SessionCreate,
    SessionList,
    SessionOut,
    TerminalStats,
)
from devpocket.terminal.session import SessionOwner, TerminalSession

# Within the app's 30 s wait for session_created or session_error, with room for the rest.
OPEN_SECONDS = 25.0


async def open_session(
    ctx: AppContext, owner: SessionOwner, request: SessionCreate
) -> TerminalSession:
    if request.type == "local":
        spec = LocalSpec(
            program=request.shell,
            cwd=request.cwd,
            cols=request.cols,
            rows=request.rows,
            env=request.env,
        )
        return await ctx.terminals.create_local(owner, spec)
    return await _open_ssh(ctx, owner, request)


async def _open_ssh(
    ctx: AppContext, owner: SessionOwner, request: SessionCreate
) -> TerminalSession:
    with ctx.terminals.reserve(owner):
        return await _reserved_ssh(ctx, owner, request)


async def _reserved_ssh(
    ctx: AppContext, owner: SessionOwner, request: SessionCreate
) -> TerminalSession:
    profile_id = request.ssh_profile_id or (request.profile.id if request.profile else None)
    async with ctx.sessionmaker() as db:
        profile = await _saved_profile(db, owner.user_id, profile_id, inline=request.profile)
        if profile is not None:
            target = await probe.target_of(db, ctx, profile)
            if request.profile is not None:
                target = _typed_over_stored(target, request.profile)
            keepalive = profile.keepalive_interval or None
        elif request.profile is not None:
            target = await probe.unsaved_target(ctx, _unsaved(request.profile))
            keepalive = request.profile.keepalive_interval or None
        else:  # SessionCreate requires one of the two
            raise InvalidInput("An SSH session needs a profile.", code="profile_required")
        await db.commit()
    process = await _connect(
        ctx,
        profile,
        target,
        cols=request.cols,
        rows=request.rows,
        keepalive=keepalive,
        integration=request.shell_integration,
    )
    return await ctx.terminals.adopt(
        owner, "ssh", process, profile_id=profile.id if profile else None
    )


async def _saved_profile(
    db: AsyncSession,
    user_id: uuid.UUID,
    profile_id: uuid.UUID | None,
    *,
    inline: InlineProfile | None,
) -> SshProfile | None:
    if profile_id is None:
        return None
    try:
        return await owned_profile(db, user_id, profile_id)
    except NotFound:
        if inline is None or inline.host is None:
            raise
        return None  # an unsaved profile that carries the app's own id


def _typed_over_stored(target: Target, inline: InlineProfile) -> Target:
    """Credentials sent with a saved profile's id (typed when connecting) win over stored ones."""
    return replace(
        target,
        password=target.password if inline.password is None else inline.password,
        private_key=target.private_key if inline.private_key is None else inline.private_key,
        passphrase=target.passphrase if inline.passphrase is None else inline.passphrase,
    )


def _unsaved(inline: InlineProfile) -> ConnectionTestRequest:
    try:
        return inline.unsaved()
    except ValueError:  # pydantic's ValidationError too; the fields themselves were checked
        raise InvalidInput(
            "profile: host and username are required for a profile that is not saved.",
            code="invalid_input",
        ) from None


async def _connect(
    ctx: AppContext,
    profile: SshProfile | None,
    target: Target,
    *,
    cols: int,
    rows: int,
    keepalive: int | None,
    integration: bool,
) -> RemoteProcess:
    """Connect; what the connection showed (a host key to pin, a failure) goes on the profile.

    The app waits 30 s for an answer (CONTRACT.md), whatever the profile's own timeouts (up to
    two minutes per hop): past that, a session that opened would have nobody to use it.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(OPEN_SECONDS):
            process = await RemoteProcess.open(
                target, cols=cols, rows=rows, keepalive=keepalive, integration=integration
            )
    except TimeoutError:
        report = ConnectionReport(
            success=False,
            code="timeout",
            message=f"The SSH session did not open within {OPEN_SECONDS:g} s.",
            response_time_ms=round((time.perf_counter() - started) * 1000),
        )
        await _remember(ctx, profile, report)
        raise SSHConnectError(report) from None
    except SSHConnectError as exc:
        await _remember(ctx, profile, exc.report)
        raise
    await _remember(ctx, profile, process.report)
    return process


async def _remember(ctx: AppContext, profile: SshProfile | None, report: ConnectionReport) -> None:
    if profile is None:
        return
    async with ctx.sessionmaker() as db:
        row = await db.get(SshProfile, profile.id)
        if row is not None:
            await probe.record_reports(db, row, report, datetime.now(UTC))
            await db.commit()


def session_out(record: SessionRecord, live: TerminalSession | None) -> SessionOut:
    counters = live.counters if live is not None else None
    return SessionOut(
        id=record.id,
        type="ssh" if record.type == "ssh" else "local",
        ssh_profile_id=record.ssh_profile_id,
        shell=record.shell,  # nosec B604 - a field, not a shell flag
        status="active" if record.status == "active" else "ended",
        created_at=record.created_at,
        last_activity=counters.last_activity if counters else record.last_activity,
        ended_at=record.ended_at,
        exit_code=record.exit_code,
        end_reason=record.end_reason,
        bytes_in=counters.bytes_in if counters else record.bytes_in,
        bytes_out=counters.bytes_out if counters else record.bytes_out,
        attached=len(live.attachments) if live is not None else 0,
        output_offset=live.stream.end if live is not None else None,
    )


async def list_sessions(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, *, limit: int, offset: int
) -> SessionList:
    records, total = await repository.list_sessions_for_user(
        db, user_id, limit=limit, offset=offset
    )
    return SessionList(
        sessions=[session_out(r, ctx.terminals.get(str(r.id))) for r in records], total=total
    )


async def session_record(
    db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> SessionRecord:
    record = await repository.get_session_for_user(db, user_id, session_id)
    if record is None:
        raise NotFound("No such terminal session.", code="session_not_found")
    return record


async def close_session(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, session_id: uuid.UUID
) -> SessionOut:
    """End a running session (its record is completed as it ends); an ended one stays as it is."""
    record = await session_record(db, user_id, session_id)
    live = ctx.terminals.get(str(session_id))
    if live is not None:
        await live.close("closed_by_user")
        await live.closed.wait()
        await db.refresh(record)
    return session_out(record, None)


async def stats(db: AsyncSession, ctx: AppContext, user_id: uuid.UUID) -> TerminalStats:
    by_type = await repository.session_counts(db, user_id)
    top = await repository.top_commands(db, user_id, limit=10)
    return TerminalStats(
        total_sessions=sum(by_type.values()),
        active_sessions=await repository.count_active(db, user_id),
        total_commands=await repository.count_session_commands(db, user_id),
        total_usage_time=await repository.usage_seconds_ms(db, user_id, datetime.now(UTC)),
        top_commands=[CommandCount(command=c, count=n) for c, n in top],
        sessions_by_type=by_type,
    )
