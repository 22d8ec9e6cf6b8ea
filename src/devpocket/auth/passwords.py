"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import anyio
import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from devpocket.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    needs_rehash: bool = False


class PasswordHasher:
    """argon2id with the OWASP parameters by default (m=19 MiB, t=2, p=1).

    Hashing runs in worker threads (argon2 releases the GIL), at most ``workers`` at a time, so a
    burst of logins neither blocks the loop nor starves other thread users.
    """

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, workers: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._limiter = anyio.CapacityLimiter(workers)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check a password; with no stored hash, do the same work and fail (no enumeration)."""
        if stored_hash is None:
            await anyio.to_thread.run_sync(self._verify_dummy, password, limiter=self._limiter)
            return Verification(ok=False)
        ok = await anyio.to_thread.run_sync(
            self._verify_sync, stored_hash, password, limiter=self._limiter
        )
        return Verification(ok=ok, needs_rehash=ok and self._hasher.check_needs_rehash(stored_hash))

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._verify_sync(self._dummy_hash, password)


@cache
def common_passwords() -> frozenset[str]:
    text = files("devpocket.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password_policy(
    password: str, *, username: str | None = None, email: str | None = None
) -> None:
    """Refuse passwords that are too short, too long, common, or the account's own name."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"The password must be {MIN_LENGTH} to {MAX_LENGTH} characters long.",
            code="password_invalid_length",
        )
    lowered = password.lower()
    if lowered in common_passwords():
        raise InvalidInput(
            "This password is among the most common ones; choose another.",
            code="password_too_common",
        )
    names = {n.lower() for n in (username, email, email.split("@")[0] if email else None) if n}
    if lowered in names:
        raise InvalidInput(
            "The password must not be your username or email.", code="password_too_common"
        )
