"""Pushed changes go through each domain's services: their checks reject one change, not the
batch; profiles made by sync follow the plan's limit and have no secrets."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import SettingsFactory, serving
from tests.helpers import data, register
from tests.sync.devices import Device, at, login_device

SSH = "/api/v1/ssh"
NEW = {"name": "web", "host": "web.example.com", "username": "deploy"}


def _change(entity: str, entity_id: str, op: str = "upsert", **extra: Any) -> dict[str, Any]:
    return {
        "change_id": str(uuid.uuid4()),
        "entity": entity,
        "entity_id": entity_id,
        "op": op,
        "base_version": 0,
        "changed_at": at(1),
        **extra,
    }


async def _phone(client: httpx.AsyncClient) -> tuple[Device, str]:
    account = await register(client)
    return await login_device(client, account, "phone"), account.user_id


async def test_each_bad_change_is_rejected_on_its_own(client: httpx.AsyncClient) -> None:
    phone, user_id = await _phone(client)
    stranger = await register(client)
    theirs = data(await client.post(f"{SSH}/profiles", json=NEW, headers=stranger.headers), 201)
    good = str(uuid.uuid4())
    profile = "ssh_profile"
    cases: list[tuple[dict[str, Any], str]] = [
        (_change(profile, good, data=NEW), "applied"),
        (_change(profile, str(uuid.uuid4()), data={**NEW, "password": "x"}), "secrets_not_synced"),
        (_change(profile, str(uuid.uuid4()), data={**NEW, "port": 70000}), "invalid_change"),
        (_change(profile, str(uuid.uuid4()), data={**NEW, "status": "active"}), "unknown_fields"),
        (_change(profile, good, data={"name": None}), "field_required"),
        (_change(profile, str(uuid.uuid4()), data={"name": "no host"}), "field_required"),
        (_change(profile, theirs["id"], data={"name": "mine"}), "entity_id_taken"),
        (_change(profile, good, base_version=99, data={"name": "x"}), "base_version_ahead"),
        (_change("ssh_key", str(uuid.uuid4()), data={"name": "k"}), "create_not_synced"),
        (_change("history", str(uuid.uuid4()), data={"is_favorite": True}), "create_not_synced"),
        (_change("preferences", user_id, op="delete"), "delete_not_synced"),
        (_change("preferences", str(uuid.uuid4()), data={"ai": {}}), "not_found"),
        (_change("preferences", user_id, data={"terminal": {"font_size": 2}}), "invalid_change"),
        ({"change_id": str(uuid.uuid4()), "entity": "nothing"}, "invalid_change"),
    ]
    answer = await phone.push([change for change, _ in cases])
    outcome = [
        r["error"]["code"] if r["status"] == "rejected" else r["status"] for r in answer["results"]
    ]
    assert outcome == [expected for _, expected in cases]
    assert answer["results"][1]["client"] == {**NEW, "password": "x"}
    assert await phone.pull() == 1  # the good one only
    assert phone.local[(profile, good)]["name"] == "web"


async def test_a_profile_made_by_sync_has_no_secrets_and_follows_the_plan(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(ssh_profiles_per_user_free=1)) as (_, client):
        phone, _ = await _phone(client)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        answer = await phone.push(
            [_change("ssh_profile", first, data=NEW), _change("ssh_profile", second, data=NEW)]
        )
        assert [r["status"] for r in answer["results"]] == ["applied", "rejected"]
        assert answer["results"][1]["error"]["code"] == "profile_limit_reached"
        made = data(await client.get(f"{SSH}/profiles/{first}", headers=phone.headers))
        assert (made["has_password"], made["has_private_key"], made["has_passphrase"]) == (
            False,
            False,
            False,
        )


async def test_a_pushed_key_delete_detaches_it_from_profiles(client: httpx.AsyncClient) -> None:
    phone, _ = await _phone(client)
    key = data(
        await client.post(f"{SSH}/keys/generate", json={"name": "k"}, headers=phone.headers), 201
    )
    body = {**NEW, "auth_type": "key", "key_id": key["id"]}
    profile = data(await client.post(f"{SSH}/profiles", json=body, headers=phone.headers), 201)
    await phone.pull()
    phone.edit("ssh_key", key["id"], 5, name="renamed", fingerprint="ignored: read-only")
    phone.delete("ssh_key", key["id"], 6)
    answer = await phone.push()
    assert [r["status"] for r in answer["results"]] == ["applied", "applied"]
    assert answer["results"][0]["resolved"]["fingerprint"] == key["fingerprint"]
    await phone.pull()
    assert phone.local[("ssh_profile", profile["id"])]["key_id"] is None
    assert ("ssh_key", key["id"]) not in phone.local


async def test_a_pushed_update_clears_fields_and_moves_the_default(
    client: httpx.AsyncClient,
) -> None:
    phone, _ = await _phone(client)
    body = {**NEW, "description": "primary", "color": "#fff", "is_default": True}
    old = data(await client.post(f"{SSH}/profiles", json=body, headers=phone.headers), 201)
    await phone.pull()
    phone.edit("ssh_profile", old["id"], 5, description="", color=None)
    new = str(uuid.uuid4())
    phone.edit("ssh_profile", new, 6, **NEW, is_default=True)
    cleared, _ = (await phone.push())["results"]
    assert (cleared["resolved"]["description"], cleared["resolved"]["color"]) == ("", None)
    stored = data(await client.get(f"{SSH}/profiles/{old['id']}", headers=phone.headers))
    assert (stored["description"], stored["color"], stored["is_default"]) == ("", None, False)
    await phone.pull()
    assert phone.local[("ssh_profile", old["id"])]["is_default"] is False
    assert phone.local[("ssh_profile", new)]["is_default"] is True
