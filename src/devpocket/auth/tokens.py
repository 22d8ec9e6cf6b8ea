"""Access tokens (JWT) and opaque refresh and action tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from devpocket.errors import Unauthenticated
from devpocket.settings import ConfigurationError, Settings

ACCESS_TYPE = "access"
_LEEWAY_SECONDS = 10
_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    token_id: str
    expires_at: datetime


class AccessTokenCodec:
    """Issues and verifies access tokens against an allowlist of one algorithm."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.lifetime = timedelta(minutes=settings.jwt_access_token_expire_minutes)
        self._verified: dict[str, AccessClaims] = {}
        if self._algorithm.startswith("HS"):
            secret = settings.jwt_signing_secret()
            self._signing_key: Any = secret
            self._verifying_key: Any = secret
        else:
            private, public = settings.jwt_private_key_file, settings.jwt_public_key_file
            if private is None or public is None:
                raise ConfigurationError(
                    f"JWT_ALGORITHM={self._algorithm} needs JWT_PRIVATE_KEY_FILE and "
                    "JWT_PUBLIC_KEY_FILE"
                )
            self._signing_key = private.read_text(encoding="utf-8")
            self._verifying_key = public.read_text(encoding="utf-8")

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "typ": ACCESS_TYPE,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._signing_key, algorithm=self._algorithm)

    def verify(self, token: str) -> AccessClaims:
        """Check signature, algorithm, audience, issuer, type and times.

        A token that verified once is remembered (bounded): clients send the same token on every
        request, and signature checking is a large share of a cheap request's cost. Only the
        expiry can change a remembered verdict, so it is checked again on each hit.
        """
        remembered = self._verified.get(token)
        if remembered is not None:
            if self._clock() > remembered.expires_at.timestamp() + _LEEWAY_SECONDS:
                del self._verified[token]
                raise Unauthenticated("The access token has expired.", code="token_expired")
            return remembered
        claims = self._decode(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["sub", "sid", "jti", "iat", "nbf", "exp", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The access token is not valid.", code="token_invalid") from None
        if claims.get("typ") != ACCESS_TYPE:
            raise Unauthenticated("This is not an access token.", code="token_invalid")
        try:
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (ValueError, TypeError, AttributeError):
            raise Unauthenticated("The access token is not valid.", code="token_invalid") from None


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    """Refresh and action tokens are stored only as their SHA-256 (they carry 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
