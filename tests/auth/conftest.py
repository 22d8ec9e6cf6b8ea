from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.jwks import JwksServer, serving_jwks


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    async with serving_jwks() as server:
        yield server


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
