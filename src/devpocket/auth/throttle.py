"""Login and mail throttles on the broker's ``limits`` storage.

Failed logins are counted per (account, source) and per source (:func:`account_key` names the
account). An attacker guessing one account from one address is slowed down there, without locking
the owner out from elsewhere or touching their existing sessions; one address guessing many
accounts hits the per-source limit.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from devpocket import metrics
from devpocket.broker import Broker
from devpocket.errors import RateLimited
from devpocket.settings import Settings

log = structlog.get_logger(__name__)


def _digest(value: str) -> str:
    # Keys name accounts; keep addresses and usernames out of the shared store.
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def account_key(user_id: uuid.UUID | None, typed: str) -> str:
    """Whose password is being guessed: the account when the name resolves to one, so that its
    username and its email address share one count; otherwise the name as typed (normalised),
    so that unknown names are throttled just the same and answers do not reveal which exist."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"name:{typed.lower()}"


class Throttle:
    def __init__(self, broker: Broker, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self._broker = broker
        self._pair = parse(settings.login_failures_per_account_source)
        self._source = parse(settings.login_failures_per_source)
        self._mail = parse(settings.mail_requests_per_address)
        self._ssh_test = parse(settings.ssh_tests_per_user)
        self._limiter: FixedWindowRateLimiter | None = None

    @property
    def limiter(self) -> FixedWindowRateLimiter:
        if self._limiter is None:
            self._limiter = FixedWindowRateLimiter(self._broker.limits_storage)
        return self._limiter

    async def _retry_after(self, item: RateLimitItem, *ids: str) -> int:
        stats = await self.limiter.get_window_stats(item, *ids)
        return max(1, int(stats.reset_time - time.time()) + 1)

    async def check_login(self, account: str, source: str) -> None:
        """Refuse before checking the password when this source has guessed too often."""
        if not self.enabled:
            return
        checks = (
            (self._pair, ("login-pair", _digest(account), source)),
            (self._source, ("login-source", source)),
        )
        for item, ids in checks:
            if await self._exhausted(item, *ids):
                metrics.LOGIN_FAILURES.labels("throttled").inc()
                raise RateLimited(
                    "Too many wrong passwords. Try again later.",
                    retry_after=await self._retry_after(item, *ids),
                    code="login_throttled",
                )

    async def record_login_failure(self, account: str, source: str) -> None:
        if self.enabled:
            await self._hit(self._pair, "login-pair", _digest(account), source)
            await self._hit(self._source, "login-source", source)

    async def clear_login_failures(self, account: str, source: str) -> None:
        if not self.enabled:
            return
        try:
            await self.limiter.clear(self._pair, "login-pair", _digest(account), source)
        except StorageError:
            log.warning("throttle.storage_unavailable", action="clear")

    async def hit_mail(self, address: str) -> None:
        """Count a mail request to an address; refuse past the limit (mail bombing)."""
        if not self.enabled:
            return
        ids = ("mail", _digest(address.lower()))
        if not await self._hit(self._mail, *ids):
            raise RateLimited(
                "Too many emails requested for this address. Try again later.",
                retry_after=await self._retry_after(self._mail, *ids),
                code="mail_throttled",
            )

    async def hit_ssh_test(self, user_id: str) -> None:
        """Count a connection test; refuse past the per-user limit (no port scanning)."""
        if not self.enabled:
            return
        ids = ("ssh-test", user_id)
        if not await self._hit(self._ssh_test, *ids):
            raise RateLimited(
                "Too many connection tests. Try again later.",
                retry_after=await self._retry_after(self._ssh_test, *ids),
                code="ssh_test_throttled",
            )

    # The throttle fails open: when the shared store is down, sign-in keeps working (logged),
    # rather than every user being locked out by an outage.
    async def _exhausted(self, item: RateLimitItem, *ids: str) -> bool:
        try:
            return not await self.limiter.test(item, *ids)
        except StorageError:
            log.warning("throttle.storage_unavailable", action="test")
            return False

    async def _hit(self, item: RateLimitItem, *ids: str) -> bool:
        try:
            return await self.limiter.hit(item, *ids)
        except StorageError:
            log.warning("throttle.storage_unavailable", action="hit")
            return True
