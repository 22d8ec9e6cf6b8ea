"""Pushed changes from devices that were offline: every push order converges, nothing is lost."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.helpers import Account, data, register
from tests.sync.devices import Device, login_device

SSH = "/api/v1/ssh"


async def _devices(client: httpx.AsyncClient, count: int) -> tuple[Account, list[Device]]:
    account = await register(client)
    names = ["phone", "tablet", "laptop"][:count]
    return account, [await login_device(client, account, name) for name in names]


async def _world(client: httpx.AsyncClient, device: Device) -> dict[str, str]:
    """What each scenario starts from, made through the ordinary endpoints."""
    headers = device.headers
    made = {}
    for role in ("web", "db"):
        body = {"name": role, "host": f"{role}.example.com", "username": "deploy", "tags": ["x"]}
        made[role] = data(await client.post(f"{SSH}/profiles", json=body, headers=headers), 201)[
            "id"
        ]
    key = {"name": "deploy key", "key_type": "ed25519"}
    made["key"] = data(await client.post(f"{SSH}/keys/generate", json=key, headers=headers), 201)[
        "id"
    ]
    entry = {"command": "make deploy", "executed_at": "2026-01-01T00:00:00Z"}
    made["cmd"] = data(
        await client.post("/api/v1/history/commands", json=entry, headers=headers), 201
    )["id"]
    prefs = {"terminal": {"font_size": 14, "theme": "dark"}, "ai": {"enabled": True}}
    data(await client.put("/api/v1/users/preferences", json=prefs, headers=headers))
    made["prefs"] = (await client.get("/api/v1/auth/me", headers=headers)).json()["data"]["id"]
    made["new"] = str(uuid.uuid4())
    return made


# Offline changes of each device: (entity, role, op, clock seconds, fields).
Edit = tuple[str, str, str, float, dict[str, Any]]
EDITS: list[list[Edit]] = [
    [  # phone
        ("ssh_profile", "web", "upsert", 10, {"name": "web-phone", "port": 2201}),
        ("preferences", "prefs", "upsert", 12, {"terminal": {"font_size": 16}}),
        ("history", "cmd", "upsert", 13, {"is_favorite": True}),
        ("ssh_key", "key", "upsert", 14, {"name": "phone key"}),
    ],
    [  # tablet
        ("ssh_profile", "web", "upsert", 20, {"name": "web-tablet", "color": "#0000ff"}),
        ("ssh_profile", "db", "delete", 22, {}),
        ("preferences", "prefs", "upsert", 23, {"ai": {"enabled": False}}),
        ("history", "cmd", "upsert", 24, {"tags": ["tablet"]}),
    ],
    [  # laptop
        ("ssh_profile", "web", "upsert", 15, {"port": 2222}),
        ("ssh_profile", "db", "upsert", 5, {"description": "primary"}),
        ("preferences", "prefs", "upsert", 12, {"terminal": {"font_size": 20}}),
        ("history", "cmd", "upsert", 24, {"tags": ["laptop"]}),
        (
            "ssh_profile",
            "new",
            "upsert",
            30,
            {"name": "new", "host": "n.example.com", "username": "u"},
        ),
    ],
]


def _expected(devices: list[Device]) -> dict[tuple[str, str], Callable[[dict[str, Any]], bool]]:
    """The final state by the rules, whatever the push order."""
    tie = max(devices[0].device_id, devices[2].device_id) if len(devices) == 3 else None
    font = 16 if tie in (None, devices[0].device_id) else 20
    tags = (
        ["tablet"]
        if len(devices) == 2 or devices[1].device_id > devices[2].device_id
        else ["laptop"]
    )
    return {
        ("ssh_profile", "web"): lambda d: (
            (d["name"], d["port"], d["color"])
            == ("web-tablet", 2222 if len(devices) == 3 else 2201, "#0000ff")
        ),
        ("preferences", "prefs"): lambda d: (
            (d["terminal"]["font_size"], d["ai"]["enabled"]) == (font, False)
        ),
        ("history", "cmd"): lambda d: (d["is_favorite"], d["tags"]) == (True, tags),
        ("ssh_key", "key"): lambda d: d["name"] == "phone key",
    }


async def _run(
    client: httpx.AsyncClient, devices: list[Device], order: tuple[int, ...]
) -> dict[Any, Any]:
    made = await _world(client, devices[0])
    for device in devices:
        await device.pull()
    for device, edits in zip(devices, EDITS, strict=False):
        for entity, role, op, when, fields in edits:
            if op == "delete":
                device.delete(entity, made[role], when)
            else:
                device.edit(entity, made[role], when, **fields)
    for index in order:
        answer = await devices[index].push()
        assert all(
            r["status"] != "rejected" or r["error"]["code"] == "entity_deleted"
            for r in answer["results"]
        ), answer
    for device in devices:
        await device.pull()
    return {
        (entity, role): devices[0].local.get((entity, made[role]))
        for entity, role in [
            ("ssh_profile", "web"),
            ("ssh_profile", "db"),
            ("ssh_profile", "new"),
            ("preferences", "prefs"),
            ("history", "cmd"),
            ("ssh_key", "key"),
        ]
    }


def _comparable(final: dict[Any, Any]) -> dict[Any, Any]:
    """The state without what differs by construction between runs (each run's own new key)."""
    ignored = {"fingerprint", "public_key"}
    return {
        role: value if value is None else {k: v for k, v in value.items() if k not in ignored}
        for role, value in final.items()
    }


async def test_offline_changes_of_two_and_three_devices_converge_in_every_push_order(
    client: httpx.AsyncClient,
) -> None:
    for count in (2, 3):
        account, devices = await _devices(client, count)
        finals = []
        for order in itertools.permutations(range(count)):
            final = await _run(client, devices, order)
            # Every device holds the same copy, and the rules' outcome: no change lost.
            assert all(d.local == devices[0].local for d in devices), order
            for (entity, role), check in _expected(devices).items():
                assert check(final[(entity, role)]), (order, entity, final[(entity, role)])
            assert final[("ssh_profile", "db")] is None, order  # the delete won
            assert (final[("ssh_profile", "new")] is not None) == (count == 3)
            finals.append(_comparable(final))
        assert all(final == finals[0] for final in finals)
        await _same_as_server(client, account, devices[0])


async def _same_as_server(client: httpx.AsyncClient, account: Account, device: Device) -> None:
    """The device's copy of each profile is what the server answers for it."""
    listing = data(await client.get(f"{SSH}/profiles", headers=account.headers))["profiles"]
    profiles = {p["id"]: p for p in listing}
    copies = {key[1]: value for key, value in device.local.items() if key[0] == "ssh_profile"}
    assert set(copies) == set(profiles)
    for profile_id, copy in copies.items():
        assert {k: profiles[profile_id][k] for k in copy} == copy


async def test_a_delete_wins_over_a_concurrent_update_in_either_order(
    client: httpx.AsyncClient,
) -> None:
    _, (phone, tablet) = await _devices(client, 2)
    for delete_first in (True, False):
        made = await _world(client, phone)
        for device in (phone, tablet):
            await device.pull()
        tablet.delete("ssh_profile", made["web"], 5)
        phone.edit("ssh_profile", made["web"], 50, port=2200)  # later, yet stale
        pushes = (tablet, phone) if delete_first else (phone, tablet)
        (first,) = (await pushes[0].push())["results"]
        (second,) = (await pushes[1].push())["results"]
        assert first["status"] == "applied"
        if delete_first:
            # The update was based on a version older than the delete: rejected, both sides.
            assert (second["status"], second["error"]["code"]) == ("rejected", "entity_deleted")
            assert (second["server"], second["client"]) == (None, {"port": 2200})
        else:
            # The delete still deletes, and reports the newer change it overrode.
            assert second["status"] == "conflict_resolved"
            assert second["conflicts"] == [
                {"field": "port", "server_value": 2200, "client_value": None, "winner": "client"}
            ]
            assert (second["server"]["port"], second["resolved"]) == (2200, None)
        for device in (phone, tablet):
            await device.pull()
            assert ("ssh_profile", made["web"]) not in device.local
        response = await client.get(f"{SSH}/profiles/{made['web']}", headers=phone.headers)
        assert response.status_code == 404
