"""Service rules seen through the API: stats from aggregates, redaction and references on write."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import Account, data, later, register
from tests.history.conftest import COMMANDS, InsertRows, Record, history_rows
from tests.sync.devices import Device

STATS = "/api/v1/history/stats"
STATS_KEYS = {
    "total_commands", "successful_commands", "failed_commands", "favorite_commands",
    "commands_by_type", "commands_by_device", "commands_by_session", "first_command_at",
    "last_command_at", "average_execution_time_ms", "top_commands", "recent_working_directories",
}  # fmt: skip


async def test_stats_answer_the_contract_keys_from_the_entries(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    rows: list[dict[str, Any]] = [
        {"command": "ls", "result_type": "success", "execution_time_ms": 10, "session_id": "a",
         "working_directory": "/a", "executed_at": "2025-01-01T00:00:00"},
        {"command": "ls", "result_type": "success", "execution_time_ms": 30, "session_id": "a",
         "working_directory": "/b", "executed_at": "2025-01-03T00:00:00", "is_favorite": True},
        {"command": "make", "result_type": "error", "session_id": "b",
         "working_directory": "/a", "executed_at": "2025-01-02T00:00:00"},
        {"command": "pwd", "result_type": "info", "executed_at": "2025-01-04T00:00:00.000"},
    ]  # fmt: skip
    for row in rows:
        device = (await record(**row))["device_id"]
    stats = data(await client.get(STATS, headers=account.headers))
    assert set(stats) == STATS_KEYS
    assert (stats["total_commands"], stats["successful_commands"]) == (4, 2)
    assert (stats["failed_commands"], stats["favorite_commands"]) == (1, 1)
    assert stats["commands_by_type"] == {"success": 2, "error": 1, "warning": 0, "info": 1}
    assert stats["commands_by_device"] == {device: 4}
    assert stats["commands_by_session"] == {"a": 2, "b": 1}
    assert stats["first_command_at"].startswith("2025-01-01T00:00:00")
    assert stats["last_command_at"].startswith("2025-01-04T00:00:00")
    assert stats["average_execution_time_ms"] == 20.0
    assert stats["top_commands"][0] == {"command": "ls", "count": 2}
    assert stats["recent_working_directories"] == ["/b", "/a"]


async def test_stats_of_an_empty_history_are_zero(
    client: httpx.AsyncClient, account: Account
) -> None:
    stats = data(await client.get(STATS, headers=account.headers))
    assert stats["total_commands"] == 0
    assert stats["first_command_at"] is None
    assert stats["average_execution_time_ms"] == 0.0
    assert stats["top_commands"] == stats["recent_working_directories"] == []


async def test_secrets_are_redacted_on_create_and_on_update(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    entry = await record(command="mysql -uroot -phunter2 app", output="TOKEN=abc123\nok")
    assert entry["command"] == "mysql -uroot -p[REDACTED] app"
    assert entry["output"] == "TOKEN=[REDACTED]\nok"
    changes = {"command": "curl -H 'Authorization: Bearer abc' https://api"}
    updated = data(
        await client.put(f"{COMMANDS}/{entry['id']}", json=changes, headers=account.headers)
    )
    assert updated["command"] == "curl -H 'Authorization: Bearer [REDACTED]' https://api"


async def test_references_to_another_users_profile_or_device_are_dropped(
    client: httpx.AsyncClient, record: Record
) -> None:
    other = await register(client)
    profile = {"name": "db", "host": "db.example.com", "username": "root"}
    theirs = data(
        await client.post("/api/v1/ssh/profiles", json=profile, headers=other.headers), 201
    )
    devices = data(await client.get("/api/v1/users/devices", headers=other.headers))["devices"]
    entry = await record(ssh_profile_id=theirs["id"], device_id=devices[0]["id"])
    assert entry["ssh_profile_id"] is None
    assert entry["device_id"] is None


@pytest.mark.parametrize("by", ["ids", "session"])
async def test_a_bulk_delete_and_a_push_of_the_same_entries_take_turns(
    client: httpx.AsyncClient, account: Account, insert_rows: InsertRows, by: str
) -> None:
    """A push takes the user's feed lock, then changes entries; a bulk delete of the same
    entries takes the lock before deleting, so the two queue instead of deadlocking."""
    devices = data(await client.get("/api/v1/users/devices", headers=account.headers))
    device = Device(client, account.headers, devices["devices"][0]["id"])
    for round_ in range(8):
        session = f"race-{by}-{round_}"
        rows = history_rows(account.user_id, 40, seed=round_)
        for row in rows:
            row["session_id"] = session
        await insert_rows(rows)
        ids = [str(row["id"]) for row in rows]
        for entry_id in ids:
            device.edit("history", entry_id, round_, is_favorite=True, tags=["raced"])
        if by == "ids":
            delete = client.post(
                f"{COMMANDS}/bulk-delete", json={"ids": ids}, headers=account.headers
            )
        else:
            params = {"session_id": session}
            delete = client.delete(COMMANDS, params=params, headers=account.headers)
        pushed, deleted = await asyncio.gather(device.push(), later(0.025 * round_, delete))
        assert data(deleted)["deleted"] == len(ids)
        # One after the other, whole: every change applied, or every one came after the delete.
        statuses = {result["status"] for result in pushed["results"]}
        assert statuses in ({"applied"}, {"rejected"}), statuses
        left = data(
            await client.get(COMMANDS, params={"session_id": session}, headers=account.headers)
        )
        assert left["total"] == 0
        await device.pull()
        # The feed ends every entry with its delete, in either order.
        assert all(("history", i) in device.versions for i in ids)
        assert not any(("history", i) in device.local for i in ids)
