"""Small helpers for API tests: register users, read envelopes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "Tr0ub4dor&3-horse"


@dataclass
class Account:
    email: str
    username: str
    password: str
    access_token: str
    refresh_token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def data(response: httpx.Response, status: int = 200) -> Any:
    """The envelope's `data`, after checking the status and the envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The error envelope, after checking status, shape and (optionally) code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "errors" not in body
    assert "detail" not in body
    if code is not None:
        assert body["code"] == code, body
    return body


async def register(
    client: httpx.AsyncClient,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    **extra: Any,
) -> Account:
    username = username or f"user_{uuid.uuid4().hex[:10]}"
    email = f"{username}@example.com".lower()
    payload = {"email": email, "username": username, "password": password, **extra}
    body = data(await client.post("/api/v1/auth/register", json=payload), 201)
    return Account(
        email=email,
        username=username,
        password=password,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        user_id=body["user"]["id"],
    )


async def condition_holds(check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Until ``check()`` is true: for server state that no event announces (polled)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - there is nothing to wait on
            await asyncio.sleep(0.02)


async def later(seconds: float, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send ``request`` after ``seconds``: rounds of a race that start the second request at
    different points of the first."""
    await asyncio.sleep(seconds)
    return await request


def deleted_once(answers: Sequence[httpx.Response], not_found_code: str) -> None:
    """Answers to a delete, changes to the same object, and a second delete, sent together: the
    first delete or the last deleted it, and every other answer is 200 or that object's 404."""
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 404}, statuses
    assert sorted((statuses[0], statuses[-1])) == [200, 404]
    for answer in answers:
        if answer.status_code == 404:
            error(answer, 404, not_found_code)
