"""Sign-up, sign-in, token refresh, sign-out and password changes."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket import metrics
from devpocket.auth import email_flows, repository
from devpocket.auth.google import GoogleIdentity
from devpocket.auth.passwords import check_password_policy
from devpocket.auth.schemas import (
    AuthResult,
    ChangePasswordRequest,
    DeviceInfo,
    LoginRequest,
    RegisterRequest,
)
from devpocket.auth.sessions import (
    ClientInfo,
    auth_changed,
    issue_tokens,
    revoke_session,
    revoke_user_sessions,
    start_session,
)
from devpocket.auth.throttle import account_key
from devpocket.auth.tokens import hash_opaque_token
from devpocket.context import AppContext
from devpocket.db.models import AuthSession, RefreshToken, User
from devpocket.errors import AppError, Conflict, InvalidInput, PermissionDenied, Unauthenticated


class RefreshTokenReused(Unauthenticated):
    """A rotated refresh token came back: the family is revoked, and that revocation is kept."""

    keep_changes = True


def _now() -> datetime:
    return datetime.now(UTC)


async def register(
    db: AsyncSession, ctx: AppContext, data: RegisterRequest, client: ClientInfo
) -> AuthResult:
    email = str(data.email).lower()
    check_password_policy(data.password, username=data.username, email=email)
    if await repository.get_user_by_email(db, email):
        raise Conflict("An account with this email already exists.", code="email_taken")
    if await repository.get_user_by_username(db, data.username):
        raise Conflict("This username is taken.", code="username_taken")
    now = _now()
    user = User(
        email=email,
        username=data.username,
        username_key=data.username.lower(),
        password_hash=await ctx.passwords.hash(data.password),
        password_changed_at=now,
        created_at=now,
        updated_at=now,
        preferences={},
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:
        # A concurrent registration took the email or username between check and insert.
        raise Conflict(
            "This email or username is already registered.", code="account_exists"
        ) from None
    await email_flows.send_verification(db, ctx, user, now=now)
    return await start_session(
        db, ctx, user, method="password", device=data, client=client, now=now
    )


async def login(
    db: AsyncSession, ctx: AppContext, data: LoginRequest, client: ClientInfo
) -> AuthResult:
    typed = data.identifier.lower()
    user = await repository.get_user_by_login(db, typed)
    account = account_key(user.id if user else None, typed)
    await ctx.throttle.check_login(account, client.ip)
    verification = await ctx.passwords.verify(user.password_hash if user else None, data.password)
    if user is None or not verification.ok:
        metrics.LOGIN_FAILURES.labels("invalid_credentials").inc()
        await ctx.throttle.record_login_failure(account, client.ip)
        raise Unauthenticated(
            "The username, email or password is incorrect.", code="invalid_credentials"
        )
    if not user.is_active:
        metrics.LOGIN_FAILURES.labels("disabled").inc()
        raise PermissionDenied("This account is disabled.", code="account_disabled")
    await ctx.throttle.clear_login_failures(account, client.ip)
    if verification.needs_rehash:
        user.password_hash = await ctx.passwords.hash(data.password)
    return await start_session(
        db, ctx, user, method="password", device=data, client=client, now=_now()
    )


async def refresh(db: AsyncSession, ctx: AppContext, raw_token: str) -> AuthResult:
    invalid = Unauthenticated("The refresh token is not valid.", code="refresh_token_invalid")
    token = await repository.get_refresh_token(db, hash_opaque_token(raw_token))
    if token is None:
        raise invalid
    session = await repository.get_auth_session(db, token.session_id)
    user = await repository.get_user(db, session.user_id) if session else None
    if session is None or user is None or session.revoked_at is not None:
        raise invalid
    if not user.is_active:
        raise Unauthenticated("This account is disabled.", code="account_disabled")
    now = _now()
    if token.expires_at <= now:
        raise Unauthenticated("The refresh token has expired.", code="refresh_token_expired")
    if not await repository.mark_refresh_token_rotated(db, token.id, now):
        await _replayed(db, ctx, session, token, now)
    session.last_refreshed_at = now
    return await issue_tokens(db, ctx, user, session, now, parent=token)


async def _replayed(
    db: AsyncSession, ctx: AppContext, session: AuthSession, token: RefreshToken, now: datetime
) -> None:
    """An already-rotated token. A retry of a refresh whose answer was lost (the app retries)
    is let through within the grace period, superseding the successor nobody used; anything
    else is reuse of a stolen token, and the whole family ends."""
    await db.refresh(token)
    rotated_at = token.rotated_at or now
    successor = await repository.get_successor_token(db, token.id)
    if (
        successor is not None
        and (now - rotated_at).total_seconds() <= ctx.settings.refresh_reuse_grace_seconds
        and await repository.mark_refresh_token_rotated(db, successor.id, now)
    ):
        return
    await revoke_session(db, ctx, session, reason="refresh_reuse", now=now)
    raise RefreshTokenReused(
        "This refresh token was already used; the session has been signed out.",
        code="refresh_token_reused",
    )


async def logout(db: AsyncSession, ctx: AppContext, session_id: uuid.UUID) -> None:
    session = await repository.get_auth_session(db, session_id)
    if session is not None:
        await revoke_session(db, ctx, session, reason="logout", now=_now())


async def logout_by_refresh_token(db: AsyncSession, ctx: AppContext, raw_token: str) -> None:
    token = await repository.get_refresh_token(db, hash_opaque_token(raw_token))
    session = await repository.get_auth_session(db, token.session_id) if token else None
    if session is None:
        raise Unauthenticated("The refresh token is not valid.", code="refresh_token_invalid")
    await revoke_session(db, ctx, session, reason="logout", now=_now())


async def confirm_password(ctx: AppContext, user: User, password: str, client: ClientInfo) -> None:
    """Check the signed-in user's password before a change that needs it. Wrong guesses count
    like failed sign-ins of the account from this source, so that a stolen access token cannot
    be used to find the password by trying one after another."""
    account = account_key(user.id, user.email)
    await ctx.throttle.check_login(account, client.ip)
    verification = await ctx.passwords.verify(user.password_hash, password)
    if not verification.ok:
        await ctx.throttle.record_login_failure(account, client.ip)
        raise InvalidInput("The current password is incorrect.", code="password_incorrect")
    await ctx.throttle.clear_login_failures(account, client.ip)


async def change_password(
    db: AsyncSession,
    ctx: AppContext,
    user: User,
    current_session: uuid.UUID,
    data: ChangePasswordRequest,
    client: ClientInfo,
) -> int:
    """Change the password and sign out every other session; returns how many ended."""
    await confirm_password(ctx, user, data.current_password, client)
    if data.new_password == data.current_password:
        raise InvalidInput(
            "The new password must differ from the current one.", code="password_unchanged"
        )
    check_password_policy(data.new_password, username=user.username, email=user.email)
    now = _now()
    user.password_hash = await ctx.passwords.hash(data.new_password)
    user.password_changed_at = now
    ended = await revoke_user_sessions(
        db, ctx, user.id, reason="password_changed", now=now, keep=current_session
    )
    return len(ended)


async def google_sign_in(
    db: AsyncSession, ctx: AppContext, id_token: str, device: DeviceInfo, client: ClientInfo
) -> AuthResult:
    identity = await ctx.google.verify(id_token)
    user = await repository.get_user_by_google_subject(db, identity.subject)
    if user is None:
        user = await _link_or_create_google_user(db, ctx, identity)
    if not user.is_active:
        raise PermissionDenied("This account is disabled.", code="account_disabled")
    return await start_session(
        db, ctx, user, method="google", device=device, client=client, now=_now()
    )


async def _link_or_create_google_user(
    db: AsyncSession, ctx: AppContext, identity: GoogleIdentity
) -> User:
    if not identity.email or not identity.email_verified:
        raise AppError(
            "Google did not confirm this account's email address.", code="google_email_unverified"
        )
    email = identity.email.lower()
    user = await repository.get_user_by_email(db, email)
    if user is not None:
        # Google vouches for the address, so the account is the same person's: link it.
        if not user.email_verified:
            await _evict_unproven_registrant(db, ctx, user)
        user.google_subject = identity.subject
        user.email_verified = True
        auth_changed(db, ctx, user.id)
        return user
    now = _now()
    first, _, last = (identity.name or "").partition(" ")
    username = await _free_username(db, email.split("@")[0])
    user = User(
        email=email,
        username=username,
        username_key=username.lower(),
        password_hash=None,
        email_verified=True,
        google_subject=identity.subject,
        avatar_url=identity.picture,
        first_name=first or None,
        last_name=last or None,
        created_at=now,
        updated_at=now,
        preferences={},
    )
    db.add(user)
    await db.flush()
    return user


async def _evict_unproven_registrant(db: AsyncSession, ctx: AppContext, user: User) -> None:
    """Whoever registered an address they never confirmed may not own it (anyone can register
    someone else's address): once Google proves the owner, the registrant's password and
    sessions end. Only Google, or a password reset mailed to the address, signs in from now on."""
    now = _now()
    user.password_hash = None
    user.password_changed_at = now
    await revoke_user_sessions(db, ctx, user.id, reason="google_linked_unverified", now=now)


async def _free_username(db: AsyncSession, wanted: str) -> str:
    base = "".join(c for c in wanted if c.isascii() and (c.isalnum() or c == "_"))[:24] or "user"
    base = base if len(base) >= 3 else f"{base}_user"
    candidate = base
    while await repository.get_user_by_username(db, candidate):
        candidate = f"{base}_{secrets.randbelow(10**6):06d}"
    return candidate
