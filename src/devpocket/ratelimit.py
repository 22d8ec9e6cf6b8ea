"""Request rate limits on the API, on the broker's ``limits`` storage (Redis when configured).

Signed-in callers are limited per user at their tier's rate; others per client address. The
sign-in endpoints (``/api/v1/auth/…``) also have a stricter per-address limit. Answers carry the
``RateLimit-Policy`` and ``RateLimit`` headers (IETF draft: ``"free";q=120;w=60`` and
``"free";r=57;t=30``); a refusal is a 429 in the envelope with ``Retry-After``. The limit fails
open when the store cannot be reached. ``RATE_LIMIT_ENABLED=false`` turns it off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devpocket import metrics
from devpocket.context import AppContext
from devpocket.envelope import error_body
from devpocket.errors import Unauthenticated
from devpocket.middleware import header_value, send_json
from devpocket.settings import Settings

log = structlog.get_logger(__name__)

_AUTH_PREFIX = "/api/v1/auth/"


@dataclass(frozen=True, slots=True)
class _Verdict:
    name: str
    item: RateLimitItem
    allowed: bool
    remaining: int
    reset_in: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        policy = f'"{self.name}";q={self.item.amount};w={self.item.get_expiry()}'
        state = f'"{self.name}";r={self.remaining};t={self.reset_in}'
        return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", state.encode())]


class ApiRateLimits:
    def __init__(self, settings: Settings) -> None:
        self._tiers = {
            "free": parse(settings.api_rate_limit_free),
            "pro": parse(settings.api_rate_limit_pro),
            "team": parse(settings.api_rate_limit_team),
        }
        self._anonymous = parse(settings.api_rate_limit_anonymous)
        self._auth = parse(settings.auth_rate_limit)

    def _caller(self, ctx: AppContext, scope: Scope) -> tuple[str, RateLimitItem, str]:
        """(limit name, limit, key): per user and tier when signed in, else per address."""
        authorization = header_value(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                claims = ctx.access_tokens.verify(token.strip())
            except Unauthenticated:
                pass
            else:
                tier = ctx.auth_cache.tier_of(claims.session_id) or "free"
                return tier, self._tiers.get(tier, self._tiers["free"]), f"user:{claims.user_id}"
        return "anonymous", self._anonymous, f"ip:{self._address(ctx, scope)}"

    @staticmethod
    def _address(ctx: AppContext, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else None
        return ctx.client_addresses.resolve(peer, header_value(scope, b"x-forwarded-for"))

    async def _hit(
        self, limiter: FixedWindowRateLimiter, name: str, item: RateLimitItem, key: str
    ) -> _Verdict:
        allowed = await limiter.hit(item, "api", name, key)
        stats = await limiter.get_window_stats(item, "api", name, key)
        reset_in = max(1, int(stats.reset_time - time.time()) + 1)
        return _Verdict(name, item, allowed, stats.remaining, reset_in)

    async def check(self, ctx: AppContext, scope: Scope) -> _Verdict | None:
        """The binding verdict for this request (the refusing one, else the caller's)."""
        limiter = ctx.throttle.limiter
        try:
            if scope["path"].startswith(_AUTH_PREFIX):
                auth = await self._hit(limiter, "auth", self._auth, self._address(ctx, scope))
                if not auth.allowed:
                    return auth
            return await self._hit(limiter, *self._caller(ctx, scope))
        except StorageError:
            log.warning("ratelimit.storage_unavailable")
            return None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.enabled = settings.rate_limit_enabled
        self.limits = ApiRateLimits(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        ctx: AppContext = scope["app"].state.ctx
        verdict = await self.limits.check(ctx, scope)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "")
        if not verdict.allowed:
            metrics.RATE_LIMITED.labels(verdict.name).inc()
            body = error_body(
                "Too many requests. Try again later.",
                "rate_limited",
                details={"retry_after": verdict.reset_in, "limit": verdict.name},
                request_id=request_id,
            )
            extra = [(b"retry-after", str(verdict.reset_in).encode()), *verdict.headers()]
            await send_json(send, 429, body, request_id, extra_headers=extra)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *verdict.headers()]
            await send(message)

        await self.app(scope, receive, send_with_limits)
