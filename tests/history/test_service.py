"""Service rules seen through the API: stats from aggregates, redaction and references on write."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import Account, data, register
from tests.history.conftest import COMMANDS, Record

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
