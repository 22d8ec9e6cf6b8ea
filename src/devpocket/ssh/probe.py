"""Connection tests of saved and unsaved profiles: pinning host keys on first use.

The server must not become a port scanner for its users: tests are rate limited per user, and
outside development private, loopback and link-local targets are refused
(``SSH_BLOCK_PRIVATE_TARGETS``). The address checked is the address connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket import metrics
from devpocket.context import AppContext
from devpocket.db.models import SshProfile
from devpocket.errors import PermissionDenied
from devpocket.ssh import repository
from devpocket.ssh.connect import ConnectionReport, SSHConnectError, Target, test_connection
from devpocket.ssh.schemas import ConnectionTestRequest, ConnectionTestResult, JumpReport
from devpocket.ssh.secrets import context_for

_RESOLVE_TIMEOUT = 5.0


async def _address(ctx: AppContext, host: str, port: int) -> str:
    """The address to connect to; refused when it is private and such targets are blocked.

    Raises :class:`SSHConnectError` (``host_unreachable``) when a blocked server cannot resolve
    the name: the check and the connection must use the same address.
    """
    if not ctx.settings.blocks_private_ssh_targets:
        return host
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        # Never the name itself: the connection would resolve it again, perhaps elsewhere.
        unresolved = ConnectionReport(
            success=False,
            code="host_unreachable",
            message=f"The host name {host!r} could not be resolved.",
            response_time_ms=0,
        )
        raise SSHConnectError(unresolved) from None
    address = str(infos[0][4][0])
    ip = ipaddress.ip_address(address)
    if not ip.is_global:
        raise PermissionDenied(
            "Connections to private, loopback or link-local addresses are not allowed here.",
            code="target_not_allowed",
        )
    return address


def _decrypt(
    ctx: AppContext, token: str | None, table: str, row: uuid.UUID, column: str
) -> str | None:
    if token is None:
        return None
    return ctx.secrets.decrypt(token, context=context_for(table, row, column))


async def target_of(
    db: AsyncSession, ctx: AppContext, profile: SshProfile, *, depth: int = 0
) -> Target:
    private_key = _decrypt(
        ctx, profile.private_key_encrypted, "ssh_profiles", profile.id, "private_key"
    )
    if private_key is None and profile.key_id is not None:
        key = await repository.get_key(db, profile.key_id)
        if key is not None:
            private_key = _decrypt(
                ctx, key.private_key_encrypted, "ssh_keys", key.id, "private_key"
            )
            key.last_used_at = datetime.now(UTC)
    jump = None
    if profile.jump_profile_id is not None and depth < 3:
        hop = await repository.get_profile(db, profile.jump_profile_id)
        if hop is not None and hop.user_id == profile.user_id:
            jump = await target_of(db, ctx, hop, depth=depth + 1)
    return Target(
        host=await _address(ctx, profile.host, profile.port),
        port=profile.port,
        username=profile.username,
        password=_decrypt(ctx, profile.password_encrypted, "ssh_profiles", profile.id, "password"),
        private_key=private_key,
        passphrase=_decrypt(
            ctx, profile.passphrase_encrypted, "ssh_profiles", profile.id, "passphrase"
        ),
        pinned_host_key=profile.host_key_fingerprint,
        strict_host_key=profile.strict_host_key,
        connect_timeout=float(profile.connect_timeout),
        jump=jump,
    )


def record_report(profile: SshProfile, report: ConnectionReport, now: datetime) -> None:
    """Trust on first use; remember a different key as pending; keep the status current."""
    if report.code == "host_key_mismatch":
        profile.pending_host_key_type = report.host_key_type
        profile.pending_host_key_fingerprint = report.host_key_fingerprint
    elif (
        # Pinned only by a successful connection: the server proved its key and accepted us.
        report.success
        and report.host_key_fingerprint
        and profile.host_key_fingerprint is None
        and not profile.strict_host_key
    ):
        profile.host_key_fingerprint = report.host_key_fingerprint
        profile.host_key_type = report.host_key_type
    elif report.host_key_fingerprint == profile.host_key_fingerprint and report.host_key_type:
        profile.host_key_type = report.host_key_type
    profile.status = "active" if report.success else "failed"
    if report.success:
        profile.last_connected_at = now


def result_of(report: ConnectionReport, now: datetime) -> ConnectionTestResult:
    metrics.SSH_CONNECTION_TESTS.labels(report.code or "success").inc()
    jump = report.jump
    return ConnectionTestResult(
        success=report.success,
        message=report.message,
        error=report.code,
        response_time=report.response_time_ms,
        timestamp=now,
        server_version=report.server_version,
        host_key_type=report.host_key_type,
        host_key_fingerprint=report.host_key_fingerprint,
        expected_host_key_fingerprint=report.expected_fingerprint,
        jump=None
        if jump is None
        else JumpReport(
            success=jump.success,
            error=jump.code,
            message=jump.message,
            host_key_type=jump.host_key_type,
            host_key_fingerprint=jump.host_key_fingerprint,
        ),
    )


async def test_profile(
    db: AsyncSession, ctx: AppContext, profile: SshProfile
) -> ConnectionTestResult:
    await ctx.throttle.hit_ssh_test(str(profile.user_id))
    try:
        report = await test_connection(await target_of(db, ctx, profile))
    except SSHConnectError as exc:  # refused before connecting: a name that did not resolve
        report = exc.report
    now = datetime.now(UTC)
    await record_reports(db, profile, report, now)
    return result_of(report, now)


async def record_reports(
    db: AsyncSession, profile: SshProfile, report: ConnectionReport, now: datetime
) -> None:
    """What a connection showed, kept on the profile and on its jump host's profile."""
    record_report(profile, report, now)
    if report.jump is not None and profile.jump_profile_id is not None:
        hop = await repository.get_profile(db, profile.jump_profile_id)
        if hop is not None:
            record_report(hop, report.jump, now)


async def test_unsaved(
    ctx: AppContext, user_id: uuid.UUID, data: ConnectionTestRequest
) -> ConnectionTestResult:
    await ctx.throttle.hit_ssh_test(str(user_id))
    try:
        report = await test_connection(await unsaved_target(ctx, data))
    except SSHConnectError as exc:  # refused before connecting: a name that did not resolve
        report = exc.report
    return result_of(report, datetime.now(UTC))


async def unsaved_target(ctx: AppContext, data: ConnectionTestRequest) -> Target:
    return Target(
        host=await _address(ctx, data.host, data.port or 22),
        port=data.port or 22,
        username=data.username,
        password=data.password,
        private_key=data.private_key,
        passphrase=data.passphrase,
        pinned_host_key=data.host_key_fingerprint,
        strict_host_key=bool(data.strict_host_key),
        connect_timeout=float(data.connect_timeout or 10),
        jump=None,
    )
