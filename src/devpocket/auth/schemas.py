"""Request and response bodies of ``/api/v1/auth`` (shapes from CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, EmailStr, Field, model_validator

from devpocket.auth.passwords import MAX_LENGTH, MIN_LENGTH
from devpocket.db.models import User

USERNAME_PATTERN = r"^[a-zA-Z0-9_]+$"


class RequestModel(BaseModel):
    """Inputs tolerate unknown keys (the app sends extras) and strip surrounding spaces."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)


class DeviceInfo(RequestModel):
    device_id: uuid.UUID | None = Field(
        default=None, validation_alias=AliasChoices("device_id", "deviceId")
    )
    device_name: str | None = Field(
        default=None, max_length=200, validation_alias=AliasChoices("device_name", "deviceName")
    )
    platform: str | None = Field(
        default=None,
        max_length=50,
        validation_alias=AliasChoices("platform", "device_type", "deviceType"),
    )
    app_version: str | None = Field(
        default=None, max_length=50, validation_alias=AliasChoices("app_version", "appVersion")
    )


class RegisterRequest(DeviceInfo):
    email: EmailStr
    username: str = Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)


class LoginRequest(DeviceInfo):
    email: str | None = Field(
        default=None, max_length=320, description="Email address or username."
    )
    username: str | None = Field(default=None, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)

    @model_validator(mode="after")
    def _identifier_present(self) -> LoginRequest:
        if not (self.email or self.username):
            raise ValueError("Provide `email` (email or username) or `username`.")
        return self

    @property
    def identifier(self) -> str:
        return self.email or self.username or ""


class RefreshRequest(RequestModel):
    refresh_token: str = Field(
        min_length=1, max_length=512, validation_alias=AliasChoices("refresh_token", "refreshToken")
    )


class LogoutRequest(RequestModel):
    refresh_token: str | None = Field(
        default=None, max_length=512, validation_alias=AliasChoices("refresh_token", "refreshToken")
    )


class ChangePasswordRequest(RequestModel):
    current_password: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        validation_alias=AliasChoices("currentPassword", "current_password"),
    )
    new_password: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        validation_alias=AliasChoices("newPassword", "new_password"),
    )


class ForgotPasswordRequest(RequestModel):
    email: EmailStr


class ResetPasswordRequest(RequestModel):
    token: str = Field(min_length=1, max_length=512)
    password: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        validation_alias=AliasChoices("password", "newPassword", "new_password"),
    )


class ResendVerificationRequest(RequestModel):
    email: EmailStr | None = None


class GoogleSignInRequest(DeviceInfo):
    id_token: str = Field(
        min_length=1, max_length=8192, validation_alias=AliasChoices("idToken", "id_token")
    )
    access_token: str | None = Field(
        default=None,
        max_length=8192,
        validation_alias=AliasChoices("accessToken", "access_token"),
        description="Accepted for the app's convenience; the ID token alone is verified.",
    )


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ProfileUpdateRequest(RequestModel):
    first_name: str | None = Field(
        default=None, max_length=100, validation_alias=_alias("firstName", "first_name")
    )
    last_name: str | None = Field(
        default=None, max_length=100, validation_alias=_alias("lastName", "last_name")
    )
    bio: str | None = Field(default=None, max_length=1000)
    company: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    avatar_url: str | None = Field(
        default=None, max_length=2048, validation_alias=_alias("avatarUrl", "avatar_url")
    )
    email_notifications: bool | None = Field(
        default=None, validation_alias=_alias("emailNotifications", "email_notifications")
    )
    push_notifications: bool | None = Field(
        default=None, validation_alias=_alias("pushNotifications", "push_notifications")
    )


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    username: str
    email_verified: bool
    avatar_url: str | None
    first_name: str | None
    last_name: str | None
    bio: str | None
    company: str | None
    location: str | None
    subscription_tier: Literal["free", "pro", "team"]
    is_in_trial: bool
    trial_ends_at: datetime | None
    subscription_ends_at: datetime | None
    two_factor_enabled: bool
    email_notifications: bool
    push_notifications: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        trial = user.trial_ends_at
        return cls(
            id=user.id,
            email=user.email,
            username=user.username,
            email_verified=user.email_verified,
            avatar_url=user.avatar_url,
            first_name=user.first_name,
            last_name=user.last_name,
            bio=user.bio,
            company=user.company,
            location=user.location,
            subscription_tier=user.subscription_tier,
            is_in_trial=trial is not None and trial > datetime.now(UTC),
            trial_ends_at=trial,
            subscription_ends_at=user.subscription_ends_at,
            two_factor_enabled=user.two_factor_enabled,
            email_notifications=user.email_notifications,
            push_notifications=user.push_notifications,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class AuthResult(BaseModel):
    """What register, login, refresh and Google sign-in answer."""

    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Access token lifetime in seconds.")
