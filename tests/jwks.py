"""A stand-in for Google's key endpoint: a real HTTP server on loopback serving a JWKS.

Tests sign ID tokens with the matching private keys. Plain helper code, no fixtures: a conftest
wraps :func:`serving_jwks` in a fixture.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

HOST = "127.0.0.1"
CLIENT_ID = "devpocket-test.apps.googleusercontent.com"
DEFAULT_KID = "google-key-1"


@cache
def private_key(kid: str) -> rsa.RSAPrivateKey:
    """One RSA key per key id, generated once per test run because generation is slow."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def google_claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid Google ID token for ``CLIENT_ID``; ``None`` values drop a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": "110169484474386276334",
        "email": "ada@example.test",
        "email_verified": True,
        "name": "Ada Lovelace",
        "picture": "https://lh3.googleusercontent.com/a/ada",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


@dataclass
class JwksServer:
    host: str
    port: int
    request_count: int = 0
    # What the next responses look like; tests change these to simulate Google misbehaving.
    status: int = HTTPStatus.OK
    body: bytes | None = None
    cache_control: str | None = None
    delay: float = 0.0
    published: list[str] = field(default_factory=lambda: [DEFAULT_KID])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/oauth2/v3/certs"

    def publish(self, kid: str) -> None:
        """Add a key to the set, as Google does when it rotates keys."""
        self.published.append(kid)

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = DEFAULT_KID,
        signing_kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        """A token naming ``kid`` in its header (omitted when ``None``) and signed with the key of
        ``signing_kid`` (default: ``kid``'s own), whether or not that key is published."""
        key = private_key(signing_kid or kid or DEFAULT_KID)
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)

    def key_set(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key(kid).public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client gave up before finishing its request
            self.request_count += 1
            await asyncio.sleep(self.delay)
            body = self.body if self.body is not None else json.dumps(self.key_set()).encode()
            headers = [
                f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                "Connection: close",
            ]
            if self.cache_control is not None:
                headers.append(f"Cache-Control: {self.cache_control}")
            writer.write("\r\n".join(headers).encode() + b"\r\n\r\n" + body)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


@asynccontextmanager
async def serving_jwks() -> AsyncIterator[JwksServer]:
    jwks = JwksServer(host=HOST, port=0)
    server = await asyncio.start_server(jwks._respond, HOST, 0)
    jwks.port = server.sockets[0].getsockname()[1]
    try:
        yield jwks
    finally:
        server.close()
        await server.wait_closed()
