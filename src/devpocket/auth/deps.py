"""``CurrentAuth`` and ``CurrentUser``: who is calling, from the bearer access token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from devpocket.auth import repository
from devpocket.auth.schemas import UserOut
from devpocket.auth.tokens import AccessClaims
from devpocket.context import AppContext
from devpocket.db.models import AuthSession, User
from devpocket.db.session import DbSession
from devpocket.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A live session of an active user, checked on this request."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    device_id: uuid.UUID | None
    claims: AccessClaims
    profile: UserOut


async def _check(ctx: AppContext, claims: AccessClaims) -> Authenticated:
    remembered = await ctx.auth_cache.lookup(claims.session_id, claims.user_id)
    if remembered is not None:
        return Authenticated(
            user_id=claims.user_id,
            session_id=claims.session_id,
            device_id=remembered.device_id,
            claims=claims,
            profile=remembered.profile,
        )
    stamp = await ctx.auth_cache.stamp(claims.user_id)  # before the database: see auth/cache.py
    # A short read of its own: a request answered from memory opens no database session at all.
    async with ctx.sessionmaker() as db:
        found = await repository.get_user_with_session(db, claims.user_id, claims.session_id)
    if found is None:
        raise Unauthenticated("This session is no longer valid.", code="session_revoked")
    user, session = found
    if session.revoked_at is not None:
        raise Unauthenticated("This session has been signed out.", code="session_revoked")
    if not user.is_active:
        raise Unauthenticated("This account is disabled.", code="account_disabled")
    profile = UserOut.of(user)
    if stamp is not None:
        ctx.auth_cache.remember(
            session.id, user_id=user.id, device_id=session.device_id, profile=profile, stamp=stamp
        )
    return Authenticated(
        user_id=user.id,
        session_id=session.id,
        device_id=session.device_id,
        claims=claims,
        profile=profile,
    )


async def authenticate_token(ctx: AppContext, token: str) -> Authenticated:
    """The caller an access token stands for (WebSockets, which have no dependencies)."""
    return await _check(ctx, ctx.access_tokens.verify(token))


async def recheck(ctx: AppContext, claims: AccessClaims) -> Authenticated:
    """Whether a login is still live, for a long connection whose token may have expired."""
    return await _check(ctx, claims)


class BearerAuthentication(HTTPBearer):
    """The bearer scheme of the OpenAPI schema, which also checks the token and its session.

    One dependency instead of a chain (context, header, check): FastAPI resolves dependencies
    on every request, and on a cheap authenticated request that resolution was the largest
    cost (profiled with bench/ and cProfile).
    """

    def __init__(self, *, optional: bool) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="An access token from `/auth/login`, `/auth/register` or `/auth/refresh`.",
        )
        self._optional = optional

    async def __call__(self, request: Request) -> Authenticated | None:  # type: ignore[override]
        credentials = await super().__call__(request)
        ctx: AppContext = request.app.state.ctx
        if self._optional:
            # Public endpoints use a valid bearer when present and ignore a stale one.
            if credentials is None:
                return None
            try:
                return await self._check(ctx, credentials.credentials)
            except Unauthenticated:
                return None
        if credentials is None:
            raise Unauthenticated("Sign in to continue.", code="not_authenticated")
        return await self._check(ctx, credentials.credentials)

    @staticmethod
    async def _check(ctx: AppContext, token: str) -> Authenticated:
        auth = await _check(ctx, ctx.access_tokens.verify(token))
        # Every later log line of this request names the user (the access log included).
        structlog.contextvars.bind_contextvars(user_id=str(auth.user_id))
        return auth


CurrentAuth = Annotated[Authenticated, Depends(BearerAuthentication(optional=False))]
OptionalAuth = Annotated[Authenticated | None, Depends(BearerAuthentication(optional=True))]


async def _current_user(auth: CurrentAuth, db: DbSession) -> User:
    """The user row, for endpoints that change it (already in the session after a check)."""
    user = await db.get(User, auth.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("This session is no longer valid.", code="session_revoked")
    return user


CurrentUser = Annotated[User, Depends(_current_user)]


async def _current_session(auth: CurrentAuth, db: DbSession) -> AuthSession:
    session = await db.get(AuthSession, auth.session_id)
    if session is None or session.revoked_at is not None:
        raise Unauthenticated("This session has been signed out.", code="session_revoked")
    return session


CurrentSession = Annotated[AuthSession, Depends(_current_session)]
