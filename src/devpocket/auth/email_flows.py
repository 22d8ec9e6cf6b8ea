"""Links sent by mail: email verification and password reset. Tokens are single use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.auth import repository
from devpocket.auth.passwords import check_password_policy
from devpocket.auth.sessions import auth_changed, revoke_user_sessions
from devpocket.auth.tokens import hash_opaque_token, new_opaque_token
from devpocket.context import AppContext
from devpocket.db.hooks import after_commit
from devpocket.db.models import ActionToken, User
from devpocket.errors import InvalidInput
from devpocket.mail import OutgoingMail

VERIFY = "email_verification"
RESET = "password_reset"


def _link(ctx: AppContext, path: str, token: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


async def _new_token(
    db: AsyncSession, user: User, purpose: str, lifetime: timedelta, now: datetime
) -> str:
    await repository.expire_action_tokens(db, user.id, purpose, now)
    raw = new_opaque_token()
    db.add(
        ActionToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_opaque_token(raw),
            email=user.email,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return raw


def _send(db: AsyncSession, ctx: AppContext, mail: OutgoingMail) -> None:
    async def dispatch() -> None:
        ctx.mail.send_later(mail)

    after_commit(db, dispatch)


async def send_verification(
    db: AsyncSession, ctx: AppContext, user: User, *, now: datetime
) -> None:
    lifetime = timedelta(hours=ctx.settings.email_verification_token_hours)
    token = await _new_token(db, user, VERIFY, lifetime, now)
    link = _link(ctx, "/api/v1/auth/verify-email", token)
    _send(
        db,
        ctx,
        OutgoingMail(
            to=user.email,
            subject="Confirm your DevPocket email address",
            text=(
                f"Hello {user.username},\n\nConfirm your email address by opening this link:\n"
                f"{link}\n\nThe link works once and expires in "
                f"{ctx.settings.email_verification_token_hours} hours. "
                "If you did not create a DevPocket account, ignore this message.\n"
            ),
        ),
    )


async def resend_verification(
    db: AsyncSession, ctx: AppContext, user: User | None, email: str | None
) -> None:
    """Mail a new link to the signed-in user, or to the account of ``email`` if there is one."""
    if user is None and email is None:
        return
    await ctx.throttle.hit_mail(user.email if user else str(email))
    user = user or await repository.get_user_by_email(db, str(email))
    if user is None or user.email_verified or not user.is_active:
        return
    await send_verification(db, ctx, user, now=datetime.now(UTC))


async def verify_email(db: AsyncSession, ctx: AppContext, raw_token: str) -> User:
    now = datetime.now(UTC)
    token = await repository.get_action_token(db, hash_opaque_token(raw_token), VERIFY)
    user = await repository.get_user(db, token.user_id) if token else None
    # A used link is refused like an unknown one: the link works once, as its mail says, and
    # whoever holds it afterwards learns nothing (the answer carries the user's data).
    if (
        token is None
        or user is None
        or token.used_at is not None
        or token.expires_at <= now
        or token.email != user.email
    ):
        raise InvalidInput(
            "This verification link is invalid or has expired.", code="verification_token_invalid"
        )
    token.used_at = now
    if not user.email_verified:
        user.email_verified = True
        auth_changed(db, ctx, user.id)
    return user


async def forgot_password(db: AsyncSession, ctx: AppContext, email: str) -> None:
    """Mail a reset link when the account exists; the answer is the same either way."""
    await ctx.throttle.hit_mail(email)
    user = await repository.get_user_by_email(db, email)
    if user is None or not user.is_active:
        return
    lifetime = timedelta(minutes=ctx.settings.password_reset_token_minutes)
    token = await _new_token(db, user, RESET, lifetime, datetime.now(UTC))
    link = _link(ctx, "/reset-password", token)
    _send(
        db,
        ctx,
        OutgoingMail(
            to=user.email,
            subject="Reset your DevPocket password",
            text=(
                f"Hello {user.username},\n\nSomeone asked to reset your DevPocket password. "
                f"To choose a new one, open:\n{link}\n\nor enter this code in the app:\n{token}\n\n"
                f"It works once and expires in {ctx.settings.password_reset_token_minutes} "
                "minutes. Resetting signs out every device. "
                "If this was not you, ignore this message; your password stays as it is.\n"
            ),
        ),
    )


async def reset_password(db: AsyncSession, ctx: AppContext, raw_token: str, password: str) -> None:
    now = datetime.now(UTC)
    token = await repository.get_action_token(db, hash_opaque_token(raw_token), RESET)
    user = await repository.get_user(db, token.user_id) if token else None
    if (
        token is None
        or user is None
        or token.used_at is not None
        or token.expires_at <= now
        or not user.is_active
    ):
        raise InvalidInput("This reset link is invalid or has expired.", code="reset_token_invalid")
    check_password_policy(password, username=user.username, email=user.email)
    token.used_at = now
    user.password_hash = await ctx.passwords.hash(password)
    user.password_changed_at = now
    if token.email == user.email:
        # Following the mailed link proves control of the address.
        user.email_verified = True
    await revoke_user_sessions(db, ctx, user.id, reason="password_reset", now=now)
