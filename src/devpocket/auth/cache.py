"""A per-process memory of authenticated sessions, checked against a per-user stamp.

Every authenticated request must know that its session is live and its user still exists and is
active. The database knows; asking it costs several round trips per request. This memory keeps,
per login session, what the last database check found (the user's public profile, the session's
device), together with the user's *stamp*: a random value kept in the broker and replaced after
every committed change to the user or their sessions (sign-out, revocation, profile edit,
deletion). A remembered entry is used only while the broker still holds the same stamp, so a
change on any worker or node is seen by the next request everywhere; the stamp is read *before*
the database, so a concurrent change can only make an entry look stale, never fresh.

When the broker cannot be reached, nothing is served from memory. Changes made outside the API
(SQL by hand) do not replace the stamp: they show within ``AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from devpocket.auth.schemas import UserOut
from devpocket.broker import Broker, BrokerUnavailable

log = structlog.get_logger(__name__)

# A stamp must outlive any entry that carries it; when it lapses, entries simply miss.
_STAMP_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class RememberedAuth:
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    profile: UserOut
    stamp: bytes
    remembered_at: float


class AuthCache:
    def __init__(
        self,
        broker: Broker,
        *,
        seconds: float,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._entries: dict[uuid.UUID, RememberedAuth] = {}

    @staticmethod
    def _key(user_id: uuid.UUID) -> str:
        return f"auth-stamp:{user_id}"

    def tier_of(self, session_id: uuid.UUID) -> str | None:
        """The subscription tier last seen for a session, unchecked: for choosing a rate limit,
        where a tier a few seconds stale does no harm."""
        entry = self._entries.get(session_id)
        return entry.profile.subscription_tier if entry else None

    async def lookup(self, session_id: uuid.UUID, user_id: uuid.UUID) -> RememberedAuth | None:
        entry = self._entries.get(session_id)
        if entry is None or entry.user_id != user_id:
            return None
        if self._clock() - entry.remembered_at > self._seconds:
            self._entries.pop(session_id, None)
            return None
        try:
            current = await self._broker.get(self._key(user_id))
        except BrokerUnavailable:
            return None
        if current != entry.stamp:
            self._entries.pop(session_id, None)
            return None
        return entry

    async def stamp(self, user_id: uuid.UUID) -> bytes | None:
        """The user's current stamp (created when absent); None when memory must not be used."""
        if self._seconds <= 0:
            return None
        key = self._key(user_id)
        try:
            value = await self._broker.get(key)
            if value is None:
                await self._broker.set_if_absent(
                    key, uuid.uuid4().hex.encode(), ttl=_STAMP_TTL_SECONDS
                )
                value = await self._broker.get(key)
        except BrokerUnavailable:
            return None
        return value

    def remember(
        self,
        session_id: uuid.UUID,
        *,
        user_id: uuid.UUID,
        device_id: uuid.UUID | None,
        profile: UserOut,
        stamp: bytes,
    ) -> None:
        if len(self._entries) >= self._size and session_id not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[session_id] = RememberedAuth(
            user_id=user_id,
            device_id=device_id,
            profile=profile,
            stamp=stamp,
            remembered_at=self._clock(),
        )

    async def invalidate(self, user_id: uuid.UUID) -> None:
        """Replace the user's stamp: every worker's entries for the user stop being used."""
        try:
            await self._broker.set(
                self._key(user_id), uuid.uuid4().hex.encode(), ttl=_STAMP_TTL_SECONDS
            )
        except BrokerUnavailable:
            # Other workers cannot read the stamp either while this lasts, so they go to the
            # database; entries age out within AUTH_CACHE_SECONDS regardless.
            log.warning("auth.stamp_update_failed", user_id=str(user_id))
