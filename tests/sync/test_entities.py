"""Changes made through the ordinary endpoints reach the feed, with the caller's device, and no
secret ever does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.helpers import data, deleted_once, register
from tests.sync.devices import SYNC, Device, login_device

SSH = "/api/v1/ssh"
HISTORY = "/api/v1/history/commands"
PASSWORD = "c2VjcmV0LXBhc3N3b3JkLTEyMw=="
PRIVATE_KEY = "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K"


async def _feed(client: httpx.AsyncClient, device: Device, since: int = 0) -> list[dict[str, Any]]:
    page = data(await client.get(f"{SYNC}/changes?since={since}", headers=device.headers))
    changes: list[dict[str, Any]] = page["changes"]
    return changes


async def _phone(client: httpx.AsyncClient) -> Device:
    return await login_device(client, await register(client), "phone")


async def test_profile_changes_are_in_the_feed_without_secrets(client: httpx.AsyncClient) -> None:
    phone = await _phone(client)
    body = {
        "name": "web",
        "host": "web.example.com",
        "username": "deploy",
        "password": PASSWORD,
        "private_key": PRIVATE_KEY,
        "passphrase": "cGFzcw==",
    }
    profile = data(await client.post(f"{SSH}/profiles", json=body, headers=phone.headers), 201)
    url = f"{SSH}/profiles/{profile['id']}"
    data(
        await client.put(
            url, json={"port": 2222, "password": PASSWORD + "x"}, headers=phone.headers
        )
    )
    data(await client.put(url, json={"password": None}, headers=phone.headers))  # secrets only
    data(await client.delete(url, headers=phone.headers))
    changes = await _feed(client, phone)
    summary = [(c["op"], c["fields"] if c["op"] == "upsert" else None) for c in changes]
    assert summary[0] == ("upsert", list(changes[0]["data"]))
    assert summary[1:] == [("upsert", ["port"]), ("delete", None)]
    assert {c["device_id"] for c in changes} == {phone.device_id}
    assert {c["entity_id"] for c in changes} == {profile["id"]}
    assert changes[1]["data"]["port"] == 2222
    text = json.dumps(changes)
    for secret in (PASSWORD, PRIVATE_KEY, "cGFzcw==", '"password"', "private_key", "passphrase"):
        assert secret not in text


async def test_key_generation_and_rename_are_in_the_feed_without_the_private_key(
    client: httpx.AsyncClient,
) -> None:
    phone = await _phone(client)
    body = {"name": "laptop", "key_type": "ed25519"}
    key = data(await client.post(f"{SSH}/keys/generate", json=body, headers=phone.headers), 201)
    renamed = {"name": "work laptop"}
    data(await client.put(f"{SSH}/keys/{key['id']}", json=renamed, headers=phone.headers))
    created, rename = await _feed(client, phone)
    assert created["data"]["fingerprint"] == key["fingerprint"]
    assert created["data"]["public_key"] == key["public_key"]
    assert (rename["fields"], rename["data"]["name"]) == (["name"], "work laptop")
    assert rename["device_id"] == phone.device_id
    assert "PRIVATE KEY" not in json.dumps([created, rename])


async def test_preferences_are_one_entity_with_a_field_per_section(
    client: httpx.AsyncClient,
) -> None:
    phone = await _phone(client)
    me = data(await client.get("/api/v1/auth/me", headers=phone.headers))
    put = {"terminal": {"font_size": 18}, "sync": {"wifi_only": True}}
    data(await client.put("/api/v1/users/preferences", json=put, headers=phone.headers))
    data(await client.put("/api/v1/users/preferences", json=put, headers=phone.headers))  # same
    (change,) = await _feed(client, phone)
    assert (change["entity"], change["entity_id"]) == ("preferences", me["id"])
    assert sorted(change["fields"]) == ["sync", "terminal"]
    assert change["data"]["terminal"]["font_size"] == 18
    assert change["data"]["ai"]["default_model"]  # every section, defaults included
    assert change["device_id"] == phone.device_id


async def test_changes_a_profile_causes_to_others_are_recorded_too(
    client: httpx.AsyncClient,
) -> None:
    """A new default unmarks the old one; deleting a jump host or a key detaches the profiles
    that used it: each of those profiles gets its own change."""
    phone = await _phone(client)
    old = {"name": "old", "host": "old.example.com", "username": "u", "is_default": True}
    old_id = data(await client.post(f"{SSH}/profiles", json=old, headers=phone.headers), 201)["id"]
    key = data(
        await client.post(f"{SSH}/keys/generate", json={"name": "k"}, headers=phone.headers), 201
    )
    hop = {"name": "hop", "host": "hop.example.com", "username": "u"}
    hop_id = data(await client.post(f"{SSH}/profiles", json=hop, headers=phone.headers), 201)["id"]
    inner = {
        **hop,
        "name": "inner",
        "jump_profile_id": hop_id,
        "key_id": key["id"],
        "auth_type": "key",
    }
    inner = {**inner, "is_default": True}
    inner_id = data(await client.post(f"{SSH}/profiles", json=inner, headers=phone.headers), 201)[
        "id"
    ]
    default_changes = (await _feed(client, phone))[-2:]
    assert [(c["entity_id"], c["data"]["is_default"], c["fields"]) for c in default_changes] == [
        (inner_id, True, list(default_changes[0]["data"])),
        (old_id, False, ["is_default"]),
    ]
    cursor = len(await _feed(client, phone))
    data(await client.delete(f"{SSH}/profiles/{hop_id}", headers=phone.headers))
    data(await client.delete(f"{SSH}/keys/{key['id']}?force=true", headers=phone.headers))
    changes = await _feed(client, phone, since=cursor)
    assert [(c["entity"], c["entity_id"], c["op"], c["fields"]) for c in changes] == [
        ("ssh_profile", inner_id, "upsert", ["jump_profile_id"]),
        ("ssh_profile", hop_id, "delete", []),
        ("ssh_profile", inner_id, "upsert", ["key_id"]),
        ("ssh_key", key["id"], "delete", []),
    ]


async def test_history_marks_tags_and_deletes_are_in_the_feed(client: httpx.AsyncClient) -> None:
    phone = await _phone(client)
    entry = {"command": "export TOKEN=hunter2 && make", "executed_at": "2026-01-01T00:00:00Z"}
    made = data(
        await client.post("/api/v1/history/commands", json=entry, headers=phone.headers), 201
    )
    url = f"/api/v1/history/commands/{made['id']}"
    data(await client.post(f"{url}/favorite", json={"is_favorite": True}, headers=phone.headers))
    data(await client.post(f"{url}/tags", json={"tags": ["Deploy"]}, headers=phone.headers))
    data(await client.delete(url, headers=phone.headers))
    changes = await _feed(client, phone)
    assert [(c["op"], c["fields"] if c["op"] == "upsert" else []) for c in changes][1:] == [
        ("upsert", ["is_favorite"]),
        ("upsert", ["tags"]),
        ("delete", []),
    ]
    assert changes[2]["data"]["tags"] == ["deploy"]
    assert changes[0]["data"]["command"] == made["command"]  # as stored: redacted
    assert "hunter2" not in json.dumps(changes)
    assert {c["device_id"] for c in changes} == {phone.device_id}


async def test_changes_to_a_history_entry_deleted_meanwhile_answer_404(
    client: httpx.AsyncClient,
) -> None:
    """Each request reads the entry, then waits for the feed lock that a delete holds: once the
    delete commits, the entry is gone, as if its id had never existed."""
    phone = await _phone(client)
    for _ in range(4):
        body = {"command": "make deploy", "tags": ["a"]}
        made = data(await client.post(HISTORY, json=body, headers=phone.headers), 201)
        url = f"{HISTORY}/{made['id']}"
        tags = {"tags": ["b"]}
        answers = await asyncio.gather(
            client.delete(url, headers=phone.headers),
            client.put(url, json={"command": "make test"}, headers=phone.headers),
            client.post(f"{url}/favorite", headers=phone.headers),
            client.post(f"{url}/tags", json=tags, headers=phone.headers),
            client.request("DELETE", f"{url}/tags", json=tags, headers=phone.headers),
            client.delete(url, headers=phone.headers),
        )
        deleted_once(answers, "command_not_found")
        changes = await _feed(client, phone, since=phone.cursor)
        phone.cursor = max([phone.cursor, *(c["cursor"] for c in changes)])
        assert [c["op"] for c in changes].count("delete") == 1
        assert changes[-1]["op"] == "delete"
