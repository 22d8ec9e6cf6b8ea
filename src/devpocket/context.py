"""Everything that connects, built once in the lifespan and reached through ``app.state.ctx``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import httpx
from anyio.abc import TaskGroup
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from devpocket import __version__
from devpocket.ai.client import OpenRouterClient
from devpocket.auth.cache import AuthCache
from devpocket.auth.google import GoogleTokenVerifier
from devpocket.auth.passwords import PasswordHasher
from devpocket.auth.throttle import Throttle
from devpocket.auth.tokens import AccessTokenCodec
from devpocket.broker import Broker, create_broker
from devpocket.client_address import ClientAddressResolver
from devpocket.db.engine import create_engine, create_sessionmaker
from devpocket.health.probe import SharedCheck
from devpocket.health.schemas import Readiness
from devpocket.mail import Mailer, create_mailer
from devpocket.mail.dispatch import MailDispatcher
from devpocket.settings import Settings
from devpocket.ssh.secrets import SecretBox
from devpocket.sync.changes import carry_broker
from devpocket.terminal.records import SessionRecorder
from devpocket.terminal.registry import SessionRegistry

if TYPE_CHECKING:
    from devpocket.terminal.connection import TerminalConnection


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    broker: Broker
    http: httpx.AsyncClient
    access_tokens: AccessTokenCodec
    auth_cache: AuthCache
    passwords: PasswordHasher
    google: GoogleTokenVerifier
    mail: MailDispatcher
    throttle: Throttle
    client_addresses: ClientAddressResolver
    readiness: SharedCheck[Readiness]
    secrets: SecretBox
    openrouter: OpenRouterClient
    terminals: SessionRegistry
    terminal_records: SessionRecorder
    tasks: TaskGroup
    # Open terminal sockets of this process (closed when their login is revoked).
    sockets: set[TerminalConnection] = field(default_factory=set)


@asynccontextmanager
async def build_context(
    settings: Settings, *, mailer: Mailer | None = None
) -> AsyncIterator[AppContext]:
    engine = create_engine(settings)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    broker = create_broker(redis_url, prefix=settings.redis_key_prefix)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        headers={"User-Agent": f"DevPocket/{__version__}"},
        follow_redirects=False,
    )
    sessionmaker = create_sessionmaker(engine)
    carry_broker(sessionmaker, broker)
    try:
        async with anyio.create_task_group() as tasks:
            ctx = AppContext(
                settings=settings,
                engine=engine,
                sessionmaker=sessionmaker,
                broker=broker,
                http=http,
                access_tokens=AccessTokenCodec(settings),
                auth_cache=AuthCache(broker, seconds=settings.auth_cache_seconds),
                passwords=PasswordHasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_kib=settings.password_hash_memory_kib,
                    parallelism=settings.password_hash_parallelism,
                    workers=max(1, os.cpu_count() or 1),
                ),
                google=GoogleTokenVerifier(
                    http,
                    jwks_url=settings.google_jwks_url,
                    client_ids=settings.google_client_ids,
                    cache_seconds=settings.google_jwks_cache_seconds,
                ),
                mail=MailDispatcher(
                    mailer
                    or create_mailer(
                        settings.smtp_url.get_secret_value() if settings.smtp_url else None,
                        settings.mail_from,
                        settings.mail_timeout_seconds,
                        log_text=settings.is_development,
                    ),
                    tasks,
                ),
                throttle=Throttle(broker, settings),
                client_addresses=ClientAddressResolver(settings.trusted_proxies),
                readiness=SharedCheck(settings.health_check_cache_seconds),
                secrets=SecretBox.from_text(settings.encryption_keyring_text()),
                openrouter=OpenRouterClient(
                    http,
                    base_url=settings.openrouter_api_base_url,
                    timeout=settings.ai_timeout_seconds,
                ),
                terminals=SessionRegistry.build(settings, tasks),
                terminal_records=SessionRecorder(sessionmaker),
                tasks=tasks,
            )
            ctx.terminal_records.connect(ctx.terminals)
            tasks.start_soon(ctx.terminal_records.run, ctx.terminals)
            yield ctx
            await ctx.terminals.close_all("server_shutdown")
            await ctx.terminal_records.flush()
            await ctx.mail.drain(grace=10.0)
            tasks.cancel_scope.cancel()
    finally:
        await http.aclose()
        await broker.aclose()
        await engine.dispose()
