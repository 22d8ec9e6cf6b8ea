"""Access tokens with asymmetric keys, and the algorithm allowlist against key confusion."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from devpocket.auth.tokens import AccessTokenCodec, hash_opaque_token, new_opaque_token
from devpocket.errors import Unauthenticated
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, register


def _key_files(tmp_path: Path, algorithm: str) -> tuple[Path, Path]:
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    private = tmp_path / "jwt.key"
    public = tmp_path / "jwt.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_asymmetric_tokens_work_end_to_end(
    settings_factory: SettingsFactory, tmp_path: Path, algorithm: str
) -> None:
    private, public = _key_files(tmp_path, algorithm)
    settings = settings_factory(
        jwt_algorithm=algorithm, jwt_private_key_file=private, jwt_public_key_file=public
    )
    async with serving(settings) as (_, client):
        account = await register(client)
        assert jwt.get_unverified_header(account.access_token)["alg"] == algorithm
        me = await client.get("/api/v1/auth/me", headers=account.headers)
        assert data(me)["id"] == account.user_id


async def test_public_key_used_as_hmac_secret_is_refused(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    private, public = _key_files(tmp_path, "RS256")
    codec = AccessTokenCodec(
        settings_factory(
            jwt_algorithm="RS256", jwt_private_key_file=private, jwt_public_key_file=public
        )
    )
    genuine = codec.issue(uuid.uuid4(), uuid.uuid4())
    claims = jwt.decode(genuine, options={"verify_signature": False})
    # The classic confusion attack: sign HS256 with the (public) verification key as the secret.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(public.read_bytes(), f"{header}.{payload}".encode(), hashlib.sha256)
    forged = f"{header}.{payload}.{_b64(signature.digest())}"
    with pytest.raises(Unauthenticated):
        codec.verify(forged)
    assert codec.verify(genuine).token_id == claims["jti"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_opaque_tokens_are_random_and_stored_hashed() -> None:
    first, second = new_opaque_token(), new_opaque_token()
    assert first != second
    assert len(first) >= 43
    assert hash_opaque_token(first) == hash_opaque_token(first)
    assert len(hash_opaque_token(first)) == 64


async def test_access_token_carries_the_required_claims(client: httpx.AsyncClient) -> None:
    account = await register(client)
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    assert set(claims) == {"sub", "sid", "jti", "iat", "nbf", "exp", "typ", "iss", "aud"}
    assert claims["sub"] == account.user_id
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 30 * 60


def test_remembered_token_still_expires(settings_factory: SettingsFactory) -> None:
    now = [time.time()]
    codec = AccessTokenCodec(settings_factory(), clock=lambda: now[0])
    token = codec.issue(uuid.uuid4(), uuid.uuid4())
    assert codec.verify(token).token_id  # verified and remembered
    assert codec.verify(token).token_id  # from memory
    now[0] = codec.verify(token).expires_at.timestamp() + 11
    with pytest.raises(Unauthenticated) as raised:
        codec.verify(token)
    assert raised.value.code == "token_expired"


def test_remembered_tokens_are_bounded(settings_factory: SettingsFactory) -> None:
    codec = AccessTokenCodec(settings_factory())
    for _ in range(5000):
        codec.verify(codec.issue(uuid.uuid4(), uuid.uuid4()))
    assert len(codec._verified) == 4096
