"""``CurrentUser`` and friends: who is calling, from the bearer access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from devpocket.auth import repository
from devpocket.auth.tokens import AccessClaims
from devpocket.db.models import AuthSession, User
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.errors import Unauthenticated

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from `/auth/login`, `/auth/register` or `/auth/refresh`.",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    session: AuthSession
    claims: AccessClaims


async def _authenticate(db: DbSession, ctx: Ctx, credentials: Bearer) -> Authenticated:
    if credentials is None:
        raise Unauthenticated("Sign in to continue.", code="not_authenticated")
    claims = ctx.access_tokens.verify(credentials.credentials)
    found = await repository.get_user_with_session(db, claims.user_id, claims.session_id)
    if found is None:
        raise Unauthenticated("This session is no longer valid.", code="session_revoked")
    user, session = found
    if session.revoked_at is not None:
        raise Unauthenticated("This session has been signed out.", code="session_revoked")
    if not user.is_active:
        raise Unauthenticated("This account is disabled.", code="account_disabled")
    return Authenticated(user=user, session=session, claims=claims)


CurrentAuth = Annotated[Authenticated, Depends(_authenticate)]


async def _current_user(auth: CurrentAuth) -> User:
    return auth.user


CurrentUser = Annotated[User, Depends(_current_user)]


async def _optional_auth(db: DbSession, ctx: Ctx, credentials: Bearer) -> Authenticated | None:
    """For public endpoints that use a valid bearer when present and ignore a stale one."""
    if credentials is None:
        return None
    try:
        return await _authenticate(db, ctx, credentials)
    except Unauthenticated:
        return None


OptionalAuth = Annotated[Authenticated | None, Depends(_optional_auth)]
