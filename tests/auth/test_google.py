from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from devpocket.auth.google import GoogleIdentity, GoogleTokenVerifier
from devpocket.errors import InvalidInput, PermissionDenied, UpstreamUnavailable
from tests.jwks import CLIENT_ID, DEFAULT_KID, JwksServer, google_claims

ROTATED_KID = "google-key-2"
UNPUBLISHED_KID = "made-up-key"


class ManualClock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_verifier(
    http_client: httpx.AsyncClient, jwks_server: JwksServer, clock: ManualClock
) -> Callable[..., GoogleTokenVerifier]:
    def make(
        *, client_ids: tuple[str, ...] = (CLIENT_ID,), cache_seconds: int = 3600, url: str = ""
    ) -> GoogleTokenVerifier:
        return GoogleTokenVerifier(
            http_client,
            jwks_url=url or jwks_server.url,
            client_ids=client_ids,
            cache_seconds=cache_seconds,
            clock=clock,
        )

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., GoogleTokenVerifier]) -> GoogleTokenVerifier:
    return make_verifier()


async def _assert_rejected(verifier: GoogleTokenVerifier, token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await verifier.verify(token)
    assert caught.value.code == "google_token_invalid"
    # Not 401: the app signs out on a 401, which means only this server's own credentials.
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("email_verified", "expected"),
    [(True, True), ("true", True), (False, False), ("false", False), (None, False)],
)
async def test_valid_token_yields_the_google_identity(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, email_verified: Any, expected: bool
) -> None:
    token = jwks_server.sign(google_claims(email_verified=email_verified))

    identity = await verifier.verify(token)

    assert identity == GoogleIdentity(
        subject="110169484474386276334",
        email="ada@example.test",
        email_verified=expected,
        name="Ada Lovelace",
        picture="https://lh3.googleusercontent.com/a/ada",
    )


async def test_optional_profile_claims_may_be_missing(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer
) -> None:
    token = jwks_server.sign(google_claims(email=None, name=None, picture=None))

    identity = await verifier.verify(token)

    assert (identity.email, identity.name, identity.picture) == (None, None, None)


@pytest.mark.parametrize("issuer", ["accounts.google.com", "https://accounts.google.com"])
async def test_both_google_issuer_spellings_are_accepted(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, issuer: str
) -> None:
    identity = await verifier.verify(jwks_server.sign(google_claims(iss=issuer)))

    assert identity.subject == "110169484474386276334"


async def test_any_configured_client_id_is_an_accepted_audience(
    make_verifier: Callable[..., GoogleTokenVerifier], jwks_server: JwksServer
) -> None:
    verifier = make_verifier(client_ids=("ios.apps.googleusercontent.com", CLIENT_ID))

    identity = await verifier.verify(jwks_server.sign(google_claims()))

    assert identity.subject == "110169484474386276334"


async def test_a_token_expired_within_the_leeway_is_accepted(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer
) -> None:
    now = int(time.time())
    token = jwks_server.sign(google_claims(iat=now - 3630, exp=now - 30))

    assert (await verifier.verify(token)).subject == "110169484474386276334"


def _signed(**options: Any) -> Callable[[JwksServer], str]:
    return lambda server: server.sign(google_claims(), **options)


def _claims(**overrides: Any) -> Callable[[JwksServer], str]:
    return lambda server: server.sign(google_claims(**overrides))


def _tampered(server: JwksServer) -> str:
    header, _, signature = server.sign(google_claims()).split(".")
    forged = jwt.utils.base64url_encode(b'{"sub":"someone-else"}').decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(server: JwksServer) -> str:
    return jwt.encode(google_claims(), "", algorithm="none", headers={"kid": DEFAULT_KID})


def _hmac(server: JwksServer) -> str:
    return jwt.encode(google_claims(), "x" * 32, algorithm="HS256", headers={"kid": DEFAULT_KID})


def _timed(iat: int, exp: int) -> Callable[[JwksServer], str]:
    """Times relative to when the token is built, so a long test run cannot age them."""

    def build(server: JwksServer) -> str:
        now = int(time.time())
        return server.sign(google_claims(iat=now + iat, exp=now + exp))

    return build


INVALID_TOKENS: dict[str, Callable[[JwksServer], str]] = {
    "wrong_audience": _claims(aud="someone-else.apps.googleusercontent.com"),
    "wrong_issuer": _claims(iss="https://evil.example"),
    "expired": _timed(iat=-7200, exp=-120),
    "issued_in_the_future": _timed(iat=600, exp=4200),
    "missing_sub": _claims(sub=None),
    "missing_iss": _claims(iss=None),
    "missing_aud": _claims(aud=None),
    "missing_exp": _claims(exp=None),
    "missing_iat": _claims(iat=None),
    "empty_sub": _claims(sub=""),
    "bad_signature": _signed(signing_kid=UNPUBLISHED_KID),
    "unknown_kid": _signed(kid=UNPUBLISHED_KID),
    "no_kid": _signed(kid=None),
    "alg_rs512": _signed(algorithm="RS512"),
    "tampered_payload": _tampered,
    "alg_none": _unsigned,
    "alg_hs256": _hmac,
    "garbage": lambda server: "not-a-token",
    "empty": lambda server: "",
    "three_garbage_segments": lambda server: "a.b.c",
}


@pytest.mark.parametrize("build", INVALID_TOKENS.values(), ids=INVALID_TOKENS.keys())
async def test_invalid_tokens_are_rejected(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, build: Callable[[JwksServer], str]
) -> None:
    await _assert_rejected(verifier, build(jwks_server))


async def test_disabled_when_no_client_id_is_configured(
    make_verifier: Callable[..., GoogleTokenVerifier], jwks_server: JwksServer
) -> None:
    verifier = make_verifier(client_ids=())

    with pytest.raises(PermissionDenied) as caught:
        await verifier.verify(jwks_server.sign(google_claims()))

    assert caught.value.code == "google_sign_in_disabled"
    # Not a 5xx, which the app would retry: asking again changes nothing.
    assert caught.value.status_code == 403
    assert jwks_server.request_count == 0


async def test_keys_are_fetched_once_and_cached(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, clock: ManualClock
) -> None:
    token = jwks_server.sign(google_claims())

    await verifier.verify(token)
    clock.advance(3599)
    await verifier.verify(token)

    assert jwks_server.request_count == 1
    clock.advance(1)
    await verifier.verify(token)
    assert jwks_server.request_count == 2


async def test_cache_control_max_age_sets_the_cache_lifetime(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, clock: ManualClock
) -> None:
    jwks_server.cache_control = "public, max-age=120, must-revalidate, no-transform"
    token = jwks_server.sign(google_claims())

    await verifier.verify(token)
    clock.advance(119)
    await verifier.verify(token)
    assert jwks_server.request_count == 1

    clock.advance(1)
    await verifier.verify(token)
    assert jwks_server.request_count == 2


async def test_an_unknown_key_id_refetches_at_most_once_a_minute(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, clock: ManualClock
) -> None:
    await verifier.verify(jwks_server.sign(google_claims()))
    forged = jwks_server.sign(google_claims(), kid=UNPUBLISHED_KID)

    for _ in range(5):
        await _assert_rejected(verifier, forged)
    assert jwks_server.request_count == 1

    clock.advance(60)
    for _ in range(5):
        await _assert_rejected(verifier, forged)
    assert jwks_server.request_count == 2


async def test_a_rotated_key_is_accepted_after_a_refetch(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, clock: ManualClock
) -> None:
    await verifier.verify(jwks_server.sign(google_claims()))
    jwks_server.publish(ROTATED_KID)
    clock.advance(61)

    identity = await verifier.verify(jwks_server.sign(google_claims(), kid=ROTATED_KID))

    assert identity.subject == "110169484474386276334"
    assert jwks_server.request_count == 2


async def test_concurrent_verifications_share_one_fetch(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer
) -> None:
    jwks_server.delay = 0.05
    token = jwks_server.sign(google_claims())

    identities = await asyncio.gather(*(verifier.verify(token) for _ in range(10)))

    assert {identity.subject for identity in identities} == {"110169484474386276334"}
    assert jwks_server.request_count == 1


async def test_concurrent_verifications_share_one_failed_fetch(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer
) -> None:
    jwks_server.delay = 0.05
    jwks_server.status = 503
    token = jwks_server.sign(google_claims())

    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(10)), return_exceptions=True
    )

    assert all(isinstance(result, UpstreamUnavailable) for result in results)
    assert jwks_server.request_count == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (404, None),
        (200, b"<html>not json</html>"),
        (200, b"[]"),
        (200, b'{"keys": []}'),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}'),
    ],
    ids=["server_error", "not_found", "not_json", "not_an_object", "no_keys", "no_rsa_keys"],
)
async def test_unusable_key_endpoint_is_upstream_unavailable(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer, status: int, body: bytes | None
) -> None:
    jwks_server.status = status
    jwks_server.body = body

    with pytest.raises(UpstreamUnavailable) as caught:
        await verifier.verify(jwks_server.sign(google_claims()))

    assert caught.value.code == "google_unavailable"


async def test_unreachable_key_endpoint_is_upstream_unavailable(
    make_verifier: Callable[..., GoogleTokenVerifier], jwks_server: JwksServer, closed_port: int
) -> None:
    verifier = make_verifier(url=f"http://127.0.0.1:{closed_port}/certs")

    with pytest.raises(UpstreamUnavailable) as caught:
        await verifier.verify(jwks_server.sign(google_claims()))

    assert caught.value.code == "google_unavailable"


async def test_verification_recovers_once_the_key_endpoint_is_back(
    verifier: GoogleTokenVerifier, jwks_server: JwksServer
) -> None:
    token = jwks_server.sign(google_claims())
    jwks_server.status = 500
    with pytest.raises(UpstreamUnavailable):
        await verifier.verify(token)

    jwks_server.status = 200

    assert (await verifier.verify(token)).subject == "110169484474386276334"
    assert jwks_server.request_count == 2
