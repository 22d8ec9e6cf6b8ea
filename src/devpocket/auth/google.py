"""Verifies Google ID tokens ("Sign in with Google") against Google's published signing keys.

The key set is fetched with the app's shared HTTP client and cached in process for as long as
Google's ``Cache-Control: max-age`` allows. A token signed with a key id the cache does not know
triggers one early refetch, since Google may have rotated its keys, but at most once a minute:
otherwise anyone could make this server hammer Google by sending tokens with made-up key ids.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from devpocket.errors import InvalidInput, PermissionDenied, UpstreamUnavailable

log = structlog.stdlib.get_logger(__name__)

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
ALGORITHM = "RS256"
REQUIRED_CLAIMS = ["sub", "iss", "aud", "exp", "iat"]
LEEWAY_SECONDS = 60
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
UNKNOWN_KEY_REFETCH_INTERVAL_SECONDS = 60.0
MIN_RSA_KEY_BITS = 2048

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?=,|$)", re.IGNORECASE)


@dataclass(frozen=True)
class GoogleIdentity:
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    picture: str | None


# Not a 401: the app signs out on a 401, which means only this server's own credentials
# (CONTRACT.md). A bad Google token is bad input.
def _invalid_token() -> InvalidInput:
    return InvalidInput("The Google sign-in could not be verified.", code="google_token_invalid")


def _keys_unavailable() -> UpstreamUnavailable:
    return UpstreamUnavailable("Google's keys could not be fetched.", code="google_unavailable")


class GoogleTokenVerifier:
    """Checks an ID token's signature, issuer, audience and lifetime; one per process."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        jwks_url: str,
        client_ids: Sequence[str],
        cache_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._jwks_url = jwks_url
        self._client_ids = tuple(client_ids)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._expires_at = -math.inf
        self._last_fetch_at = -math.inf
        # Finished fetches, so that callers queued behind a fetch reuse its outcome.
        self._fetches = 0
        self._last_fetch_failed = False
        self._fetch_lock = asyncio.Lock()

    async def verify(self, id_token: str) -> GoogleIdentity:
        if not self._client_ids:
            # A 4xx, not a 5xx that the app would retry: asking again cannot help.
            raise PermissionDenied(
                "Google sign-in is not configured on this server.", code="google_sign_in_disabled"
            )
        key = await self._key_for(_signing_key_id(id_token))
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=[ALGORITHM],
                audience=self._client_ids,
                issuer=GOOGLE_ISSUERS,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError as exc:
            # The reason helps spot a misconfigured client id; it never contains the token.
            log.info("google.token_rejected", reason=f"{type(exc).__name__}: {exc}")
            raise _invalid_token() from exc
        return _identity(claims)

    async def _key_for(self, kid: str) -> RSAPublicKey:
        now = self._clock()
        expired = now >= self._expires_at
        # An unknown key id may mean Google rotated keys before our cache expired.
        maybe_rotated = (
            kid not in self._keys
            and now - self._last_fetch_at >= UNKNOWN_KEY_REFETCH_INTERVAL_SECONDS
        )
        if expired or maybe_rotated:
            await self._refresh(self._fetches)
        key = self._keys.get(kid)
        if key is None:
            log.info("google.token_rejected", reason="unknown key id")
            raise _invalid_token()
        return key

    async def _refresh(self, seen_fetches: int) -> None:
        async with self._fetch_lock:
            if self._fetches != seen_fetches:
                # A fetch finished while this caller waited: share its outcome, fetch nothing.
                if self._last_fetch_failed:
                    raise _keys_unavailable()
                return
            self._last_fetch_at = self._clock()
            try:
                keys, max_age = await self._fetch()
            except UpstreamUnavailable:
                self._fetches += 1
                self._last_fetch_failed = True
                raise
            # Counted only once finished (not when cancelled), so that callers who read the
            # count while this fetch was in flight recognise it as the one they waited for.
            self._fetches += 1
            self._last_fetch_failed = False
            self._keys = keys
            self._expires_at = self._last_fetch_at + max_age

    async def _fetch(self) -> tuple[dict[str, RSAPublicKey], float]:
        try:
            # httpx's timeout bounds each network step; the outer one bounds a slow trickle.
            async with asyncio.timeout(JWKS_FETCH_TIMEOUT_SECONDS):
                response = await self._http.get(self._jwks_url, timeout=JWKS_FETCH_TIMEOUT_SECONDS)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.warning("google.jwks_unreachable", url=self._jwks_url, error=type(exc).__name__)
            raise _keys_unavailable() from exc
        if response.status_code != httpx.codes.OK:
            log.warning("google.jwks_failed", url=self._jwks_url, status=response.status_code)
            raise _keys_unavailable()
        try:
            keys = _parse_key_set(response.json())
        except ValueError as exc:
            log.warning("google.jwks_invalid", url=self._jwks_url, error=str(exc))
            raise _keys_unavailable() from exc
        max_age = _max_age(response.headers.get("cache-control"))
        log.info("google.jwks_fetched", key_ids=sorted(keys), max_age=max_age)
        return keys, self._cache_seconds if max_age is None else max_age


def _signing_key_id(id_token: str) -> str:
    """The header's key id, once the header is known to ask for RS256 (never ``none``)."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.InvalidTokenError as exc:
        log.info("google.token_rejected", reason=f"{type(exc).__name__}: {exc}")
        raise _invalid_token() from exc
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
        log.info("google.token_rejected", reason="unexpected header", alg=header.get("alg"))
        raise _invalid_token()
    return kid


def _parse_key_set(document: object) -> dict[str, RSAPublicKey]:
    """RS256 signing keys by key id; raises ``ValueError`` when there is none to use."""
    if not isinstance(document, dict):
        raise ValueError("the key set is not a JSON object")
    try:
        key_set = jwt.PyJWKSet.from_dict(document)
    except jwt.PyJWKSetError as exc:
        raise ValueError(str(exc)) from exc
    keys: dict[str, RSAPublicKey] = {}
    for jwk in key_set:
        key = _signing_key(jwk)
        if key is not None and isinstance(jwk.key_id, str) and jwk.key_id:
            keys[jwk.key_id] = key
    if not keys:
        raise ValueError("the key set holds no usable RS256 key")
    return keys


def _signing_key(jwk: jwt.PyJWK) -> RSAPublicKey | None:
    key = jwk.key
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
        return None
    if jwk.algorithm_name != ALGORITHM or jwk.public_key_use not in (None, "sig"):
        return None
    return key


def _max_age(cache_control: str | None) -> int | None:
    match = _MAX_AGE.search(cache_control or "")
    return int(match.group(1)) if match else None


def _identity(claims: Mapping[str, Any]) -> GoogleIdentity:
    def text(name: str) -> str | None:
        value = claims.get(name)
        return value if isinstance(value, str) and value else None

    subject = text("sub")
    if subject is None:
        log.info("google.token_rejected", reason="empty subject")
        raise _invalid_token()
    verified = claims.get("email_verified")
    return GoogleIdentity(
        subject=subject,
        email=text("email"),
        # Google has sent this both as a JSON boolean and as the string "true".
        email_verified=verified is True or (isinstance(verified, str) and verified == "true"),
        name=text("name"),
        picture=text("picture"),
    )
