"""``/api/v1/history``: entries, their changes and deletes, favorites, tags, stats, recent."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.helpers import Account, data, error, register
from tests.history.conftest import COMMANDS, Record

HISTORY = "/api/v1/history"
CONTRACT_KEYS = {
    "id", "command", "output", "result_type", "exit_code", "execution_time_ms", "session_id",
    "working_directory", "shell_type", "executed_at", "ssh_profile_id", "is_favorite", "tags",
    "device_id",
}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/commands"),
        ("POST", "/commands"),
        ("DELETE", "/commands?before=2025-01-01"),
        ("POST", "/commands/bulk-delete"),
        ("GET", f"/commands/{uuid.uuid4()}"),
        ("GET", "/stats"),
        ("GET", "/search?q=ls"),
        ("GET", "/recent"),
        ("GET", "/export"),
    ],
)
async def test_every_history_endpoint_needs_a_signed_in_user(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    error(await client.request(method, HISTORY + path, json={}), 401)


async def test_a_device_creates_an_entry_with_the_contract_keys_in_utc(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    entry = await record(
        command="git status",
        output="nothing to commit",
        result_type="SUCCESS",
        exit_code=0,
        execution_time_ms=12,
        session_id="s-1",
        working_directory="/srv/app",
        shell_type="zsh",
        executed_at="2025-01-01T10:00:00.000",
        tags=[" Git ", "git", "VCS"],
        is_favorite=True,
    )
    assert set(entry) >= CONTRACT_KEYS
    assert entry["executed_at"].startswith("2025-01-01T10:00:00")
    assert entry["executed_at"].endswith(("Z", "+00:00"))
    assert entry["result_type"] == "success"
    assert entry["tags"] == ["git", "vcs"]
    assert entry["is_favorite"] is True
    devices = data(await client.get("/api/v1/users/devices", headers=account.headers))
    assert entry["device_id"] == devices["devices"][0]["id"]
    fetched = data(await client.get(f"{COMMANDS}/{entry['id']}", headers=account.headers))
    assert fetched == entry


async def test_a_create_repeated_with_the_devices_id_updates_instead(
    client: httpx.AsyncClient, account: Account
) -> None:
    entry_id = str(uuid.uuid4())
    body = {"id": entry_id, "command": "make test", "exit_code": 2}
    first = data(await client.post(COMMANDS, json=body, headers=account.headers), 201)
    again = {**body, "exit_code": 0, "result_type": "success"}
    second = data(await client.post(COMMANDS, json=again, headers=account.headers), 200)
    assert first["id"] == second["id"] == entry_id
    assert (second["exit_code"], second["result_type"]) == (0, "success")
    listed = data(await client.get(COMMANDS, headers=account.headers))
    assert listed["total"] == 1


async def test_a_create_retried_while_the_first_attempt_runs_updates_instead_of_failing(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = {"id": str(uuid.uuid4()), "command": "make deploy", "exit_code": 0}
    answers = await asyncio.gather(
        *(client.post(COMMANDS, json=body, headers=account.headers) for _ in range(6))
    )
    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201]
    listed = data(await client.get(COMMANDS, headers=account.headers))
    assert [entry["id"] for entry in listed["commands"]] == [body["id"]]


async def test_a_create_with_another_users_id_conflicts(
    client: httpx.AsyncClient, record: Record
) -> None:
    entry = await record(command="whoami")
    other = await register(client)
    body = {"id": entry["id"], "command": "id"}
    error(await client.post(COMMANDS, json=body, headers=other.headers), 409, "command_id_taken")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PUT", "", {"command": "x"}),
        ("DELETE", "", None),
        ("POST", "/favorite", None),
        ("POST", "/tags", {"tags": ["a"]}),
        ("DELETE", "/tags", {"tags": ["a"]}),
    ],
)
async def test_another_users_entry_is_not_found(
    client: httpx.AsyncClient, record: Record, method: str, suffix: str, body: Any
) -> None:
    entry = await record(command="uptime")
    other = await register(client)
    path = f"{COMMANDS}/{entry['id']}{suffix}"
    answer = await client.request(method, path, json=body, headers=other.headers)
    error(answer, 404, "command_not_found")


async def test_an_update_changes_the_keys_sent_and_null_clears_optional_ones(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    entry = await record(command="cargo build", output="ok", exit_code=0, working_directory="/w")
    changes = {"command": "cargo build --release", "output": None, "result_type": None}
    updated = data(
        await client.put(f"{COMMANDS}/{entry['id']}", json=changes, headers=account.headers)
    )
    assert updated["command"] == "cargo build --release"
    assert updated["output"] is None
    assert updated["result_type"] == entry["result_type"]
    assert (updated["exit_code"], updated["working_directory"]) == (0, "/w")


async def test_a_delete_answers_an_envelope_and_forgets_the_entry(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    entry = await record(command="rm -rf build")
    path = f"{COMMANDS}/{entry['id']}"
    answer = await client.delete(path, headers=account.headers)
    assert data(answer) is None
    error(await client.get(path, headers=account.headers), 404, "command_not_found")


async def test_a_bulk_delete_by_ids_skips_other_users_entries(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    mine = [await record(command=f"echo {n}") for n in range(3)]
    other = await register(client)
    theirs = data(await client.post(COMMANDS, json={"command": "x"}, headers=other.headers), 201)
    ids = [mine[0]["id"], mine[1]["id"], theirs["id"], str(uuid.uuid4())]
    answer = await client.post(
        f"{COMMANDS}/bulk-delete", json={"ids": ids}, headers=account.headers
    )
    assert data(answer) == {"deleted": 2}
    assert data(await client.get(COMMANDS, headers=account.headers))["total"] == 1
    data(await client.get(f"{COMMANDS}/{theirs['id']}", headers=other.headers))
    # Other devices drop them too: each deleted entry is a tombstone in the sync feed.
    feed = data(await client.get("/api/v1/sync/changes?since=0", headers=account.headers))
    tombstones = {c["entity_id"] for c in feed["changes"] if c["op"] == "delete"}
    assert tombstones == {mine[0]["id"], mine[1]["id"]}


async def test_a_bulk_delete_takes_entries_before_a_date_or_of_a_session(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command="old", executed_at="2024-12-31T23:59:59")
    await record(command="new", executed_at="2025-01-01T00:00:01", session_id="s-9")
    await record(command="other", executed_at="2025-01-02T00:00:00", session_id="s-8")
    headers = account.headers
    answer = await client.delete(f"{COMMANDS}?before=2025-01-01T00:00:00.000", headers=headers)
    assert data(answer) == {"deleted": 1}
    assert data(await client.delete(f"{COMMANDS}?session_id=s-9", headers=headers)) == {
        "deleted": 1
    }
    left = data(await client.get(COMMANDS, headers=headers))["commands"]
    assert [entry["command"] for entry in left] == ["other"]
    feed = data(await client.get("/api/v1/sync/changes?since=0", headers=headers))
    assert len([c for c in feed["changes"] if c["op"] == "delete"]) == 2


async def test_a_bulk_delete_without_a_condition_is_refused(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record()
    answer = await client.delete(COMMANDS, headers=account.headers)
    error(answer, 400, "delete_filter_required")
    assert data(await client.get(COMMANDS, headers=account.headers))["total"] == 1


async def test_favorite_toggles_without_a_body_and_sets_with_one(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    path = f"{COMMANDS}/{(await record())['id']}/favorite"
    headers = account.headers
    # The app sends a JSON content type on every request, with a body or not.
    as_json = {**headers, "Content-Type": "application/json"}
    assert data(await client.post(path, headers=as_json))["is_favorite"] is True
    assert data(await client.post(path, headers=headers))["is_favorite"] is False
    for wanted in (True, True, False):
        answer = await client.post(path, json={"is_favorite": wanted}, headers=headers)
        assert data(answer)["is_favorite"] is wanted


async def test_tags_are_normalised_when_added_and_removed(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    path = f"{COMMANDS}/{(await record(tags=['ops']))['id']}/tags"
    headers = account.headers
    added = await client.post(
        path, json={"tags": [" Deploy", "PROD", "deploy", ""]}, headers=headers
    )
    assert data(added)["tags"] == ["ops", "deploy", "prod"]
    removed = await client.request(
        "DELETE", path, json={"tags": ["OPS ", "absent"]}, headers=headers
    )
    assert data(removed)["tags"] == ["deploy", "prod"]


async def test_more_than_twenty_tags_or_a_tag_over_fifty_characters_is_refused(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    headers = account.headers
    path = f"{COMMANDS}/{(await record(tags=[f't{n}' for n in range(20)]))['id']}/tags"
    error(
        await client.post(path, json={"tags": ["one-more"]}, headers=headers), 400, "too_many_tags"
    )
    error(await client.post(path, json={"tags": ["x" * 51]}, headers=headers), 422)
    many = {"command": "ls", "tags": [f"t{n}" for n in range(21)]}
    error(await client.post(COMMANDS, json=many, headers=headers), 422, "validation_error")


@pytest.mark.parametrize(
    "query",
    ["result_types=bogus", "limit=501", "limit=0", "offset=-1", "sort_by=output", "start_date=x"],
)
async def test_a_list_with_an_invalid_parameter_is_a_validation_error(
    client: httpx.AsyncClient, account: Account, query: str
) -> None:
    error(await client.get(f"{COMMANDS}?{query}", headers=account.headers), 422, "validation_error")


async def test_result_types_are_accepted_comma_separated_and_repeated(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    for result_type in ("success", "error", "warning", "info"):
        await record(command=result_type, result_type=result_type)
    for query in ("result_types=error,WARNING", "result_types=error&result_types=warning"):
        listed = data(await client.get(f"{COMMANDS}?{query}", headers=account.headers))
        assert sorted(c["command"] for c in listed["commands"]) == ["error", "warning"]
        assert listed["total"] == 2


async def test_recent_lists_the_latest_commands_first(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    for day in (3, 1, 2):
        await record(command=f"day {day}", executed_at=f"2025-01-0{day}T00:00:00")
    recent = data(await client.get(f"{HISTORY}/recent?limit=2", headers=account.headers))
    assert [entry["command"] for entry in recent["commands"]] == ["day 3", "day 2"]
