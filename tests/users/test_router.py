"""``/api/v1/users``: profile, preferences, devices and account deletion."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from devpocket.db.base import Base
from devpocket.db.models import CommandHistory
from tests.helpers import PASSWORD, data, error, later, register
from tests.sync.devices import Device, login_device

USERS = "/api/v1/users"
HISTORY = "/api/v1/history/commands"


async def test_profile_get_and_put(client: httpx.AsyncClient) -> None:
    account = await register(client)
    assert (
        data(await client.get(f"{USERS}/profile", headers=account.headers))["id"] == account.user_id
    )
    user = data(
        await client.put(f"{USERS}/profile", json={"company": "Acme"}, headers=account.headers)
    )
    assert user["company"] == "Acme"


async def test_preferences_have_defaults(client: httpx.AsyncClient) -> None:
    account = await register(client)
    prefs = data(await client.get(f"{USERS}/preferences", headers=account.headers))
    assert set(prefs) >= {"terminal", "ai", "security", "sync"}
    assert prefs["ai"]["default_model"] == "openai/gpt-4o-mini"


async def test_preferences_merge_and_keep_unknown_keys(client: httpx.AsyncClient) -> None:
    account = await register(client)
    put = {"terminal": {"font_size": 18, "ligatures": True}, "sync": {"wifi_only": True}}
    prefs = data(await client.put(f"{USERS}/preferences", json=put, headers=account.headers))
    assert prefs["terminal"]["font_size"] == 18
    assert prefs["terminal"]["cursor_style"] == "block"
    assert prefs["terminal"]["ligatures"] is True
    prefs = data(
        await client.put(
            f"{USERS}/preferences", json={"terminal": {"theme": "light"}}, headers=account.headers
        )
    )
    assert (
        prefs["terminal"] | {"font_size": 18, "theme": "light", "ligatures": True}
        == prefs["terminal"]
    )
    assert prefs["sync"]["wifi_only"] is True
    again = data(await client.get(f"{USERS}/preferences", headers=account.headers))
    assert again == prefs


async def test_invalid_preference_value_is_refused_and_nothing_is_lost(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    data(
        await client.put(
            f"{USERS}/preferences", json={"terminal": {"font_size": 20}}, headers=account.headers
        )
    )
    bad = await client.put(
        f"{USERS}/preferences", json={"terminal": {"font_size": 999}}, headers=account.headers
    )
    body = error(bad, 400, "preferences_invalid")
    assert body["details"][0]["loc"][:2] == ["terminal", "font_size"]
    prefs = data(await client.get(f"{USERS}/preferences", headers=account.headers))
    assert prefs["terminal"]["font_size"] == 20


async def test_devices_list_and_sign_out_a_device(client: httpx.AsyncClient) -> None:
    phone = await register(client, device_name="Pixel 8", platform="android")
    tablet = data(
        await client.post(
            "/api/v1/auth/login",
            json={
                "email": phone.email,
                "password": PASSWORD,
                "deviceName": "iPad",
                "platform": "ios",
            },
        )
    )
    tablet_headers = {"Authorization": f"Bearer {tablet['access_token']}"}
    listing = data(await client.get(f"{USERS}/devices", headers=phone.headers))
    assert listing["total"] == 2
    by_name = {d["name"]: d for d in listing["devices"]}
    assert by_name["Pixel 8"]["is_current"] is True
    assert by_name["iPad"]["is_current"] is False
    assert by_name["iPad"]["platform"] == "ios"
    data(await client.delete(f"{USERS}/devices/{by_name['iPad']['id']}", headers=phone.headers))
    error(await client.get("/api/v1/auth/me", headers=tablet_headers), 401)
    error(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tablet["refresh_token"]}),
        401,
    )
    data(await client.get("/api/v1/auth/me", headers=phone.headers))
    assert data(await client.get(f"{USERS}/devices", headers=phone.headers))["total"] == 1


async def test_relogin_on_the_same_device_reuses_it(client: httpx.AsyncClient) -> None:
    device_id = str(uuid.uuid4())
    account = await register(client, device_id=device_id, device_name="Phone")
    data(
        await client.post(
            "/api/v1/auth/login",
            json={"email": account.email, "password": PASSWORD, "device_id": device_id},
        )
    )
    listing = data(await client.get(f"{USERS}/devices", headers=account.headers))
    assert listing["total"] == 1
    assert listing["devices"][0]["id"] == device_id
    assert listing["devices"][0]["active_sessions"] == 2


async def test_register_current_device(client: httpx.AsyncClient) -> None:
    account = await register(client)
    device = data(
        await client.post(
            f"{USERS}/devices",
            json={"name": "Work laptop", "platform": "linux", "appVersion": "1.2.0"},
            headers=account.headers,
        )
    )
    assert (device["name"], device["platform"], device["app_version"]) == (
        "Work laptop",
        "linux",
        "1.2.0",
    )
    assert device["is_current"] is True


async def test_another_users_device_is_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    bobs = data(await client.get(f"{USERS}/devices", headers=bob.headers))["devices"][0]["id"]
    error(
        await client.delete(f"{USERS}/devices/{bobs}", headers=alice.headers),
        404,
        "device_not_found",
    )
    error(await client.delete(f"{USERS}/devices/{uuid.uuid4()}", headers=alice.headers), 404)
    error(await client.delete(f"{USERS}/devices/not-a-uuid", headers=alice.headers), 422)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"password": PASSWORD, "confirmation": "delete me"}, "confirmation_mismatch"),
        ({"password": "Wrong-pass-123", "confirmation": "DELETE"}, "password_incorrect"),
    ],
)
async def test_account_deletion_refusals_keep_the_account(
    client: httpx.AsyncClient, body: dict[str, str], code: str
) -> None:
    account = await register(client)
    response = await client.request(
        "DELETE", f"{USERS}/account", json=body, headers=account.headers
    )
    error(response, 400, code)
    data(await client.get("/api/v1/auth/me", headers=account.headers))


async def _rows_of(app: FastAPI, user_id: uuid.UUID) -> dict[str, int]:
    """Rows in every table that belong to the user, directly or through a session or device."""
    counts: dict[str, int] = {}
    async with app.state.ctx.sessionmaker() as db:
        for table in Base.metadata.sorted_tables:
            column = table.c.get("user_id") if table.name != "users" else table.c.id
            if column is None:
                continue
            counts[table.name] = int(
                await db.scalar(select(func.count()).where(column == user_id)) or 0
            )
        from devpocket.db.models import AuthSession, RefreshToken

        counts["refresh_tokens"] = int(
            await db.scalar(
                select(func.count())
                .select_from(RefreshToken)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .where(AuthSession.user_id == user_id)
            )
            or 0
        )
    return counts


async def test_account_deletion_removes_all_data_and_revokes_tokens(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    other = await register(client)
    data(await client.post("/api/v1/auth/forgot-password", json={"email": account.email}))
    user_id = uuid.UUID(account.user_id)
    before = await _rows_of(app, user_id)
    assert before["users"] == 1
    assert before["auth_sessions"] == 1
    assert before["action_tokens"] >= 1
    body = {"password": PASSWORD, "confirmation": "DELETE"}
    data(await client.request("DELETE", f"{USERS}/account", json=body, headers=account.headers))
    after = await _rows_of(app, user_id)
    assert set(after.values()) == {0}, after
    error(await client.get("/api/v1/auth/me", headers=account.headers), 401)
    error(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}),
        401,
    )
    error(
        await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        ),
        401,
    )
    data(await client.get("/api/v1/auth/me", headers=other.headers))
    # The address is free again.
    await register(client, username=account.username)


async def test_a_device_removed_while_a_push_marks_its_commands_leaves_both_done(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """Removing a device clears it from its history entries (the foreign key's SET NULL); it
    takes the user's feed lock first, as a push does, so the two queue instead of deadlocking
    when the push changes those entries in another order."""
    app, client = app_client
    account = await register(client)
    devices = data(await client.get(f"{USERS}/devices", headers=account.headers))["devices"]
    phone = Device(client, account.headers, devices[0]["id"])
    for round_ in range(6):
        tablet = await login_device(client, account, f"tablet {round_}")
        ids = [uuid.uuid4() for _ in range(40)]
        async with app.state.ctx.engine.begin() as connection:
            await connection.execute(
                insert(CommandHistory),
                [_entry(account.user_id, entry_id, tablet.device_id) for entry_id in ids],
            )
        for entry_id in reversed(ids):  # not the order the database visits them in
            phone.edit("history", str(entry_id), round_, is_favorite=True)
        url = f"{USERS}/devices/{tablet.device_id}"
        removed, pushed = await asyncio.gather(
            later(0.025 * round_, client.delete(url, headers=account.headers)), phone.push()
        )
        data(removed)
        assert {result["status"] for result in pushed["results"]} == {"applied"}
        listed = data(await client.get(HISTORY, params={"limit": 100}, headers=account.headers))
        mine = [entry for entry in listed["commands"] if uuid.UUID(entry["id"]) in set(ids)]
        assert len(mine) == len(ids)
        assert all(entry["is_favorite"] and entry["device_id"] is None for entry in mine)


def _entry(user_id: str, entry_id: uuid.UUID, device_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": entry_id, "user_id": uuid.UUID(user_id), "command": "make", "result_type": "info",
        "executed_at": now, "device_id": uuid.UUID(device_id), "is_favorite": False, "tags": [],
        "created_at": now, "updated_at": now,
    }  # fmt: skip
