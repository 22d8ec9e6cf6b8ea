"""``/api/v1/ssh/profiles``: CRUD with CONTRACT.md's shapes, sync upload, secrets never echoed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from structlog.testing import capture_logs

from devpocket.db.models import SshProfile
from tests.conftest import SettingsFactory, serving
from tests.helpers import Account, data, deleted_once, error, register

PROFILES = "/api/v1/ssh/profiles"
SECRET_PASSWORD = "c2VjcmV0LXBhc3N3b3JkLTEyMw=="  # the app sends base64 today
SECRET_KEY = "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K"
SECRET_PASSPHRASE = "cGFzc3BocmFzZQ=="
PROFILE_KEYS = {
    "id", "name", "host", "port", "username", "auth_type", "description", "tags", "color",
    "is_default", "status", "last_connected_at", "created_at", "updated_at",
}  # fmt: skip


def _profile(**overrides: Any) -> dict[str, Any]:
    return {"name": "web", "host": "web.example.com", "port": 22, "username": "deploy", **overrides}


async def _create(client: httpx.AsyncClient, account: Account, **overrides: Any) -> dict[str, Any]:
    body = data(
        await client.post(PROFILES, json=_profile(**overrides), headers=account.headers), 201
    )
    assert isinstance(body, dict)
    return body


async def test_create_answers_the_profile_flat(client: httpx.AsyncClient) -> None:
    account = await register(client)
    profile = await _create(
        client, account, auth_type="key", private_key=SECRET_KEY, passphrase=SECRET_PASSPHRASE,
        tags=["prod", "web"], color="#ff0000", description="front",
    )  # fmt: skip
    assert set(profile) >= PROFILE_KEYS
    assert profile["auth_type"] == "KEY"
    assert profile["port"] == 22
    assert profile["status"] == "unknown"
    assert (profile["has_private_key"], profile["has_passphrase"]) == (True, True)
    assert profile["has_password"] is False
    listing = data(await client.get(PROFILES, headers=account.headers))
    assert listing["total"] == 1
    assert listing["profiles"][0]["id"] == profile["id"]


async def test_secrets_are_never_echoed_nor_logged_and_are_encrypted_at_rest(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    with capture_logs() as logs:
        created = await _create(client, account, password=SECRET_PASSWORD, private_key=SECRET_KEY)
        answers = [
            await client.get(PROFILES, headers=account.headers),
            await client.get(f"{PROFILES}/{created['id']}", headers=account.headers),
            await client.put(
                f"{PROFILES}/{created['id']}", json={"name": "x"}, headers=account.headers
            ),
        ]
    for text in [*(a.text for a in answers), repr(logs)]:
        assert SECRET_PASSWORD not in text
        assert SECRET_KEY not in text
    async with app.state.ctx.sessionmaker() as db:
        row = await db.scalar(select(SshProfile).where(SshProfile.id == uuid.UUID(created["id"])))
        assert row is not None
        assert row.password_encrypted is not None
        assert SECRET_PASSWORD not in row.password_encrypted
        assert row.password_encrypted.startswith("v1.")


async def test_put_keeps_absent_credentials_and_null_removes(client: httpx.AsyncClient) -> None:
    account = await register(client)
    created = await _create(client, account, password=SECRET_PASSWORD, passphrase=SECRET_PASSPHRASE)
    url = f"{PROFILES}/{created['id']}"
    kept = data(await client.put(url, json={"port": 2222}, headers=account.headers))
    assert (kept["port"], kept["has_password"], kept["has_passphrase"]) == (2222, True, True)
    removed = data(await client.put(url, json={"password": None}, headers=account.headers))
    assert (removed["has_password"], removed["has_passphrase"]) == (False, True)


async def test_sync_upload_keeps_the_client_id_and_a_repeat_updates(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    own_id = str(uuid.uuid4())
    upload = _profile(
        id=own_id, status="active", tags=["a"], color="blue", is_default=True,
        created_at="2025-01-01T00:00:00.000", updated_at="2025-01-02T00:00:00.000",
        last_connected_at="2025-01-03T10:00:00.000", some_future_key={"x": 1},
    )  # fmt: skip
    first = await client.post(PROFILES, json=upload, headers=account.headers)
    assert data(first, 201)["id"] == own_id
    assert data(first, 201)["last_connected_at"].startswith("2025-01-03T10:00:00")
    repeat = await client.post(
        PROFILES, json={**upload, "name": "renamed"}, headers=account.headers
    )
    assert data(repeat, 200)["name"] == "renamed"
    listing = data(await client.get(PROFILES, headers=account.headers))
    assert listing["total"] == 1


async def test_a_create_retried_while_the_first_attempt_runs_updates_instead_of_failing(
    client: httpx.AsyncClient,
) -> None:
    """The app retries a POST that timed out: the attempts may overlap on the server."""
    account = await register(client)
    upload = _profile(id=str(uuid.uuid4()))
    answers = await asyncio.gather(
        *(client.post(PROFILES, json=upload, headers=account.headers) for _ in range(6))
    )
    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201]
    listing = data(await client.get(PROFILES, headers=account.headers))
    assert [p["id"] for p in listing["profiles"]] == [upload["id"]]


async def test_another_users_profile_is_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    profile = await _create(client, alice)
    url = f"{PROFILES}/{profile['id']}"
    error(await client.get(url, headers=bob.headers), 404, "profile_not_found")
    error(await client.put(url, json={"name": "mine"}, headers=bob.headers), 404)
    error(await client.delete(url, headers=bob.headers), 404)
    error(await client.post(f"{url}/test", headers=bob.headers), 404)
    assert data(await client.get(PROFILES, headers=bob.headers))["total"] == 0
    # Bob cannot take Alice's id through a sync upload either.
    error(await client.post(PROFILES, json=_profile(id=profile["id"]), headers=bob.headers), 409)


async def test_delete_answers_200_and_unknown_is_404(client: httpx.AsyncClient) -> None:
    account = await register(client)
    profile = await _create(client, account)
    url = f"{PROFILES}/{profile['id']}"
    assert data(await client.delete(url, headers=account.headers)) is None
    error(await client.delete(url, headers=account.headers), 404)


async def test_search_filter_and_stable_order(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await _create(client, account, name="beta", host="b.example.com", tags=["Prod"])
    await _create(client, account, name="alpha", host="a.internal", tags=["dev"])
    await _create(client, account, name="gamma", host="g.example.com", is_default=True)
    names = [
        p["name"] for p in data(await client.get(PROFILES, headers=account.headers))["profiles"]
    ]
    assert names == ["gamma", "alpha", "beta"]
    found = data(await client.get(PROFILES, params={"q": "EXAMPLE"}, headers=account.headers))
    assert [p["name"] for p in found["profiles"]] == ["gamma", "beta"]
    tagged = data(await client.get(PROFILES, params={"tag": "prod"}, headers=account.headers))
    assert [p["name"] for p in tagged["profiles"]] == ["beta"]


async def test_only_one_default(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first = await _create(client, account, name="one", is_default=True)
    await _create(client, account, name="two", is_default=True)
    one = data(await client.get(f"{PROFILES}/{first['id']}", headers=account.headers))
    assert one["is_default"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"port": 70000}, "port"),
        ({"auth_type": "telepathy"}, "auth_type"),
        ({"host": ""}, "host"),
        ({"host_key_fingerprint": "MD5:aa:bb"}, "host_key_fingerprint"),
    ],
)
async def test_invalid_profiles_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await register(client)
    response = await client.post(PROFILES, json=_profile(**body), headers=account.headers)
    details = error(response, 422, "validation_error")["details"]
    assert field in {d["field"] for d in details}


async def test_jump_host_must_be_own_and_loop_free(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    bastion = await _create(client, alice, name="bastion")
    inner = await _create(client, alice, name="inner", jump_profile_id=bastion["id"])
    assert inner["jump_profile_id"] == bastion["id"]
    loop = {"jump_profile_id": inner["id"]}
    response = await client.put(f"{PROFILES}/{bastion['id']}", json=loop, headers=alice.headers)
    error(response, 400, "jump_loop")
    foreign = _profile(jump_profile_id=bastion["id"])
    error(
        await client.post(PROFILES, json=foreign, headers=bob.headers),
        404,
        "jump_profile_not_found",
    )


async def test_profile_limit(settings_factory: SettingsFactory) -> None:
    async with serving(settings_factory(ssh_profiles_max=2)) as (_, client):
        account = await register(client)
        await _create(client, account, name="a")
        await _create(client, account, name="b")
        response = await client.post(PROFILES, json=_profile(name="c"), headers=account.headers)
        error(response, 403, "profile_limit_reached")


async def test_host_key_acceptance_needs_the_presented_key(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    profile = await _create(client, account)
    presented = "SHA256:" + "B" * 43
    async with app.state.ctx.sessionmaker() as db:
        row = await db.get(SshProfile, uuid.UUID(profile["id"]))
        assert row is not None
        row.host_key_fingerprint = "SHA256:" + "A" * 43
        row.pending_host_key_fingerprint = presented
        row.pending_host_key_type = "ssh-ed25519"
        await db.commit()
    url = f"{PROFILES}/{profile['id']}/host-key"
    wrong = {"fingerprint": "SHA256:" + "C" * 43}
    error(
        await client.post(url, json=wrong, headers=account.headers), 409, "host_key_not_presented"
    )
    accepted = data(
        await client.post(url, json={"fingerprint": presented}, headers=account.headers)
    )
    assert accepted["host_key_fingerprint"] == presented
    assert accepted["pending_host_key_fingerprint"] is None
    forgotten = data(await client.delete(url, headers=account.headers))
    assert forgotten["host_key_fingerprint"] is None


async def test_listing_is_one_query_whatever_the_count(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """No N+1: listing 3 or 30 profiles costs the same statements."""
    app, client = app_client
    account = await register(client)
    engine = app.state.ctx.engine.sync_engine
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async def listed() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            data(await client.get(PROFILES, headers=account.headers))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len([s for s in statements if "ssh_profiles" in s])

    for n in range(3):
        await _create(client, account, name=f"p{n}")
    few = await listed()
    for n in range(3, 30):
        await _create(client, account, name=f"p{n}")
    assert await listed() == few == 1


async def test_changes_to_a_profile_deleted_meanwhile_answer_404(
    client: httpx.AsyncClient,
) -> None:
    """Each request reads the profile, then waits for the feed lock that a delete holds: once
    the delete commits, the profile is gone, as if its id had never existed."""
    account = await register(client)
    for _ in range(4):
        url = f"{PROFILES}/{(await _create(client, account))['id']}"
        answers = await asyncio.gather(
            client.delete(url, headers=account.headers),
            client.put(url, json={"port": 2222}, headers=account.headers),
            client.put(url, json={"name": "renamed", "is_default": True}, headers=account.headers),
            client.delete(url, headers=account.headers),
        )
        deleted_once(answers, "profile_not_found")
        error(await client.get(url, headers=account.headers), 404, "profile_not_found")


async def test_forgetting_the_host_key_of_a_profile_deleted_meanwhile_answers_404(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for _ in range(4):
        url = f"{PROFILES}/{(await _create(client, account))['id']}"
        deleted, forgot = await asyncio.gather(
            client.delete(url, headers=account.headers),
            client.delete(f"{url}/host-key", headers=account.headers),
        )
        assert deleted.status_code == 200
        assert forgot.status_code in {200, 404}, forgot.text
