"""Reading the feed: paging from far behind, excluding a device's own changes, bad cursors;
and pushes as a whole: duplicates, unknown devices."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, update

from devpocket.db.models import SyncChange, User
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error, register
from tests.sync.devices import SYNC, Device, login_device


async def _fill_feed(app: FastAPI, user_id: str, count: int, devices: list[str]) -> None:
    """``count`` changes in one statement, taking turns between ``devices``."""
    owner = uuid.UUID(user_id)
    now = datetime.now(UTC)
    rows = [
        {
            "user_id": owner,
            "cursor": n,
            "entity": "ssh_profile",
            "entity_id": uuid.uuid4(),
            "op": "upsert",
            "data": {"name": f"host-{n}"},
            "fields": ["name"],
            "device_id": uuid.UUID(devices[n % len(devices)]),
            "changed_at": now,
        }
        for n in range(1, count + 1)
    ]
    async with app.state.ctx.sessionmaker() as db:
        await db.execute(insert(SyncChange), rows)
        await db.execute(update(User).where(User.id == owner).values(sync_cursor=count))
        await db.commit()


async def test_a_device_far_behind_pages_through_the_whole_feed(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    device = await login_device(client, account, "tablet")
    await _fill_feed(app, account.user_id, 3000, [device.device_id])
    pages = []
    while True:
        params = {"since": device.cursor, "limit": 500}
        page = data(await client.get(f"{SYNC}/changes", params=params, headers=device.headers))
        pages.append(page)
        assert [c["cursor"] for c in page["changes"]] == list(
            range(device.cursor + 1, device.cursor + 1 + len(page["changes"]))
        )
        device.cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert [len(p["changes"]) for p in pages] == [500] * 6
    assert device.cursor == 3000
    # Nothing new: the same cursor back, and an empty page.
    again = data(await client.get(f"{SYNC}/changes?since=3000", headers=device.headers))
    assert again == {"changes": [], "cursor": 3000, "has_more": False}


async def test_excluding_a_device_still_moves_the_cursor_past_its_changes(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    phone = await login_device(client, account, "phone")
    tablet = await login_device(client, account, "tablet")
    # Cursors 1…10 alternate tablet (odd) and phone (even); the last ones are the phone's own.
    await _fill_feed(app, account.user_id, 10, [phone.device_id, tablet.device_id])
    mine = {"exclude_device": phone.device_id}
    page = data(
        await client.get(f"{SYNC}/changes", params={**mine, "limit": 3}, headers=phone.headers)
    )
    assert [c["cursor"] for c in page["changes"]] == [1, 3, 5]
    assert (page["cursor"], page["has_more"]) == (5, True)
    rest = data(
        await client.get(f"{SYNC}/changes", params={**mine, "since": 5}, headers=phone.headers)
    )
    assert [c["cursor"] for c in rest["changes"]] == [7, 9]
    assert (rest["cursor"], rest["has_more"]) == (10, False)
    # Only its own changes left: none come, and the cursor still reaches the end.
    tail = data(
        await client.get(f"{SYNC}/changes", params={**mine, "since": 9}, headers=phone.headers)
    )
    assert tail == {"changes": [], "cursor": 10, "has_more": False}


async def test_a_cursor_beyond_the_feed_is_refused(client: httpx.AsyncClient) -> None:
    account = await register(client)
    body = error(await client.get(f"{SYNC}/changes?since=7", headers=account.headers), 400)
    assert (body["code"], body["details"]) == ("cursor_ahead", {"cursor": 0})
    error(await client.get(f"{SYNC}/changes?limit=1001", headers=account.headers), 422)
    error(await client.get(f"{SYNC}/changes?since=-1", headers=account.headers), 422)
    error(await client.get(f"{SYNC}/changes"), 401)


async def test_pushing_the_same_batch_twice_changes_nothing_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    device = await login_device(client, account, "phone")
    profile_id = str(uuid.uuid4())
    device.edit("ssh_profile", profile_id, 1, name="web", host="web.example.com", username="u")
    device.edit("ssh_profile", str(uuid.uuid4()), 2, name="no host")  # rejected
    batch = list(device.pending)
    first = await device.push()
    assert [r["status"] for r in first["results"]] == ["applied", "rejected"]
    second = await device.push(batch)
    assert [r["status"] for r in second["results"]] == ["duplicate", "duplicate"]
    assert [r["first_status"] for r in second["results"]] == ["applied", "rejected"]
    for before, after in zip(first["results"], second["results"], strict=True):
        assert {**before, "status": "duplicate", "first_status": before["status"]} == after
    assert second["cursor"] == first["cursor"] == 1
    assert await device.pull() == 1
    # A change repeated within one batch is a duplicate too.
    device.edit("ssh_profile", profile_id, 3, port=2222)
    third = await device.push([device.pending[0], device.pending[0]])
    assert [r["status"] for r in third["results"]] == ["applied", "duplicate"]


async def test_only_the_users_own_devices_may_push(client: httpx.AsyncClient) -> None:
    account = await register(client)
    other = await register(client)
    theirs = data(await client.get("/api/v1/users/devices", headers=other.headers))["devices"]
    for device_id in (str(uuid.uuid4()), theirs[0]["id"]):
        stranger = Device(client, account.headers, device_id)
        response = await client.post(
            f"{SYNC}/push", json={"device_id": device_id, "changes": []}, headers=account.headers
        )
        error(response, 404, "device_not_found")
        assert stranger.pending == []


async def test_devices_beyond_the_plans_limit_may_not_push(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(sync_devices_per_user_free=2)) as (_, client):
        account = await register(client)  # its first device
        second = await login_device(client, account, "tablet")
        third = await login_device(client, account, "laptop")
        body: dict[str, object] = {"changes": []}
        data(await client.post(f"{SYNC}/push", json={**body, "device_id": second.device_id},
                               headers=second.headers))  # fmt: skip
        refused = await client.post(
            f"{SYNC}/push", json={**body, "device_id": third.device_id}, headers=third.headers
        )
    details = error(refused, 403, "sync_device_limit_reached")["details"]
    assert (details["feature"], details["plan"], details["limit"]) == ("multi_device", "free", 2)
    assert details["used"] == 3
