"""``/api/v1/ssh/keys`` and ``/ssh/validate-key``: the private half never comes back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devpocket.ssh.keys import generate_key
from tests.helpers import data, deleted_once, error, register

KEYS = "/api/v1/ssh/keys"


@pytest.mark.parametrize(
    ("key_type", "bits", "expected_bits"),
    [("ed25519", None, 256), ("ecdsa", 384, 384), ("rsa", 3072, 3072)],
)
async def test_generate_lists_public_half_only(
    client: httpx.AsyncClient, key_type: str, bits: int | None, expected_bits: int
) -> None:
    account = await register(client)
    body = {"name": "laptop", "key_type": key_type, "bits": bits, "comment": "me@laptop"}
    key = data(await client.post(f"{KEYS}/generate", json=body, headers=account.headers), 201)
    assert (key["key_type"], key["bits"]) == (key_type, expected_bits)
    assert key["fingerprint"].startswith("SHA256:")
    assert key["public_key"].endswith("me@laptop")
    listing = await client.get(KEYS, headers=account.headers)
    assert data(listing)["total"] == 1
    assert "PRIVATE KEY" not in listing.text


async def test_generate_refuses_weak_rsa(client: httpx.AsyncClient) -> None:
    account = await register(client)
    body = {"name": "old", "key_type": "rsa", "bits": 1024}
    error(await client.post(f"{KEYS}/generate", json=body, headers=account.headers), 400)


async def test_one_key_imported_several_times_at_once_is_stored_once(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    material = generate_key("ed25519", None, "twice")
    body = {"name": "twice", "privateKey": material.private_key}
    answers = await asyncio.gather(
        *(client.post(KEYS, json=body, headers=account.headers) for _ in range(4))
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    for answer in answers:
        if answer.status_code == 409:
            error(answer, 409, "key_exists")


async def test_import_rename_and_delete_in_use(client: httpx.AsyncClient) -> None:
    account = await register(client)
    generated = data(
        await client.post(f"{KEYS}/generate", json={"name": "a"}, headers=account.headers), 201
    )
    material = generate_key("ed25519", None, "pasted")
    body = {"name": "pasted", "privateKey": material.private_key}
    imported = data(await client.post(KEYS, json=body, headers=account.headers), 201)
    assert imported["fingerprint"] == material.fingerprint
    again = await client.post(KEYS, json=body, headers=account.headers)
    error(again, 409, "key_exists")
    renamed = data(
        await client.put(f"{KEYS}/{imported['id']}", json={"name": "b"}, headers=account.headers)
    )
    assert renamed["name"] == "b"
    profile = {"name": "p", "host": "h", "username": "u", "key_id": generated["id"]}
    data(await client.post("/api/v1/ssh/profiles", json=profile, headers=account.headers), 201)
    url = f"{KEYS}/{generated['id']}"
    error(await client.delete(url, headers=account.headers), 409, "key_in_use")
    data(await client.delete(url, params={"force": "true"}, headers=account.headers))
    profiles = data(await client.get("/api/v1/ssh/profiles", headers=account.headers))
    assert profiles["profiles"][0]["key_id"] is None


async def test_another_users_key_is_404(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    key = data(
        await client.post(f"{KEYS}/generate", json={"name": "a"}, headers=alice.headers), 201
    )
    error(await client.delete(f"{KEYS}/{key['id']}", headers=bob.headers), 404, "key_not_found")
    profile = {"name": "p", "host": "h", "username": "u", "key_id": key["id"]}
    response = await client.post("/api/v1/ssh/profiles", json=profile, headers=bob.headers)
    error(response, 404, "key_not_found")


async def test_validate_key_reports_without_storing(client: httpx.AsyncClient) -> None:
    account = await register(client)
    material = generate_key("ecdsa", 256, None)
    good = {"privateKey": material.private_key, "passphrase": None}
    valid = data(await client.post("/api/v1/ssh/validate-key", json=good, headers=account.headers))
    assert valid == {
        "is_valid": True,
        "key_type": "ecdsa",
        "key_size": 256,
        "fingerprint": material.fingerprint,
        "error": None,
        "code": None,
    }
    bad = {"privateKey": "not a key"}
    invalid = data(await client.post("/api/v1/ssh/validate-key", json=bad, headers=account.headers))
    assert invalid["is_valid"] is False
    assert invalid["code"] == "key_invalid"
    assert data(await client.get(KEYS, headers=account.headers))["total"] == 0


async def test_changes_to_a_key_deleted_meanwhile_answer_404(client: httpx.AsyncClient) -> None:
    """Each request reads the key, then waits for the feed lock that a delete holds: once the
    delete commits, the key is gone, as if its id had never existed."""
    account = await register(client)
    for _ in range(4):
        body = {"name": "laptop", "key_type": "ed25519"}
        key = data(await client.post(f"{KEYS}/generate", json=body, headers=account.headers), 201)
        url = f"{KEYS}/{key['id']}"
        answers = await asyncio.gather(
            client.delete(url, headers=account.headers),
            client.put(url, json={"name": "work"}, headers=account.headers),
            client.put(url, json={"comment": "me@work"}, headers=account.headers),
            client.delete(url, headers=account.headers),
        )
        deleted_once(answers, "key_not_found")
        listing = data(await client.get(KEYS, headers=account.headers))
        assert key["id"] not in {k["id"] for k in listing["keys"]}
