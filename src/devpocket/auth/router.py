"""``/api/v1/auth``: registration, sign-in, tokens, email flows and the caller's profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Query

from devpocket.api import API_PREFIX, make_router
from devpocket.auth import email_flows, repository, service
from devpocket.auth.deps import CurrentAuth, CurrentUser, OptionalAuth
from devpocket.auth.schemas import (
    AuthResult,
    ChangePasswordRequest,
    ForgotPasswordRequest,
    GoogleSignInRequest,
    LoginRequest,
    LogoutRequest,
    ProfileUpdateRequest,
    RefreshRequest,
    RegisterRequest,
    ResendVerificationRequest,
    ResetPasswordRequest,
    UserOut,
)
from devpocket.db.session import DbSession
from devpocket.deps import Client, Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.errors import Unauthenticated
from devpocket.users import service as users_service

router = make_router(f"{API_PREFIX}/auth", "auth")

_AUTH = error_responses(401, 422)


@router.post(
    "/register",
    status_code=201,
    responses=error_responses(400, 409, 422, 429),
    summary="Create an account and sign in",
)
async def register(
    data: RegisterRequest, db: DbSession, ctx: Ctx, client: Client
) -> Envelope[AuthResult]:
    return ok(await service.register(db, ctx, data, client), "Account created.")


@router.post(
    "/login",
    responses=error_responses(401, 403, 422, 429),
    summary="Sign in with an email or username and a password",
)
async def login(
    data: LoginRequest, db: DbSession, ctx: Ctx, client: Client
) -> Envelope[AuthResult]:
    return ok(await service.login(db, ctx, data, client), "Signed in.")


@router.post(
    "/refresh",
    responses=error_responses(401, 422),
    summary="Exchange a refresh token for new tokens (rotation)",
)
async def refresh(data: RefreshRequest, db: DbSession, ctx: Ctx) -> Envelope[AuthResult]:
    return ok(await service.refresh(db, ctx, data.refresh_token))


@router.post("/logout", responses=_AUTH, summary="Sign out this session everywhere")
async def logout(
    db: DbSession,
    ctx: Ctx,
    auth: OptionalAuth,
    data: Annotated[LogoutRequest | None, Body()] = None,
) -> Envelope[None]:
    """With a valid bearer, ends its session. Without one, a `refresh_token` in the body names
    the session to end (an app whose access token expired can still sign out)."""
    if auth is not None:
        await service.logout(db, ctx, auth.session_id)
    elif data is not None and data.refresh_token:
        await service.logout_by_refresh_token(db, ctx, data.refresh_token)
    else:
        raise Unauthenticated("Sign in to continue.", code="not_authenticated")
    return ok(None, "Signed out.")


@router.get("/me", responses=_AUTH, summary="The signed-in user")
async def me(auth: CurrentAuth) -> Envelope[UserOut]:
    return ok(auth.profile)


@router.put("/profile", responses=_AUTH, summary="Update the signed-in user's profile")
async def update_profile(
    data: ProfileUpdateRequest, user: CurrentUser, db: DbSession, ctx: Ctx
) -> Envelope[UserOut]:
    return ok(
        UserOut.of(await users_service.update_profile(db, ctx, user, data)), "Profile updated."
    )


@router.post(
    "/change-password",
    responses=error_responses(400, 401, 422, 429),
    summary="Change the password; other sessions are signed out",
)
async def change_password(
    data: ChangePasswordRequest,
    auth: CurrentAuth,
    user: CurrentUser,
    db: DbSession,
    ctx: Ctx,
    client: Client,
) -> Envelope[None]:
    await service.change_password(db, ctx, user, auth.session_id, data, client)
    return ok(None, "Password changed. Other devices have been signed out.")


@router.post(
    "/forgot-password",
    responses=error_responses(422, 429),
    summary="Mail a password reset link (same answer whether the account exists or not)",
)
async def forgot_password(data: ForgotPasswordRequest, db: DbSession, ctx: Ctx) -> Envelope[None]:
    await email_flows.forgot_password(db, ctx, str(data.email).lower())
    return ok(None, "If an account exists for this address, a reset link is on its way.")


@router.post(
    "/reset-password",
    responses=error_responses(400, 422),
    summary="Set a new password with a reset token; every session is signed out",
)
async def reset_password(data: ResetPasswordRequest, db: DbSession, ctx: Ctx) -> Envelope[None]:
    await email_flows.reset_password(db, ctx, data.token, data.password)
    return ok(None, "Password reset. Sign in with the new password.")


@router.get(
    "/verify-email",
    responses=error_responses(400, 422),
    summary="Confirm an email address with the mailed token",
)
async def verify_email(
    db: DbSession, ctx: Ctx, token: Annotated[str, Query(min_length=1, max_length=512)]
) -> Envelope[UserOut]:
    return ok(
        UserOut.of(await email_flows.verify_email(db, ctx, token)), "Email address confirmed."
    )


@router.post(
    "/resend-verification",
    responses=error_responses(422, 429),
    summary="Mail a new verification link to the signed-in user or to an address",
)
async def resend_verification(
    db: DbSession,
    ctx: Ctx,
    auth: OptionalAuth,
    data: Annotated[ResendVerificationRequest | None, Body()] = None,
) -> Envelope[None]:
    email = str(data.email).lower() if data and data.email else None
    user = await repository.get_user(db, auth.user_id) if auth else None
    await email_flows.resend_verification(db, ctx, user, email)
    return ok(None, "If the address needs confirming, a new link is on its way.")


@router.post(
    "/google",
    responses=error_responses(400, 403, 422, 502),
    summary="Sign in with a Google ID token",
)
async def google(
    data: GoogleSignInRequest, db: DbSession, ctx: Ctx, client: Client
) -> Envelope[AuthResult]:
    return ok(await service.google_sign_in(db, ctx, data.id_token, data, client), "Signed in.")
