"""``GET /history/export``: the history as a JSON or CSV file, which imports back unchanged."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests.helpers import Account, data, error, register
from tests.history.conftest import COMMANDS, InsertRows, Record, history_rows

EXPORT = "/api/v1/history/export"
# What belongs to the account rather than to the command: not carried into another account.
_ACCOUNT_KEYS = ("id", "device_id", "ssh_profile_id", "created_at", "updated_at")


async def _export(client: httpx.AsyncClient, account: Account, **params: str) -> httpx.Response:
    answer = await client.get(EXPORT, params=params, headers=account.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    return answer


def _portable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k not in _ACCOUNT_KEYS} for entry in entries]


async def test_a_json_export_imports_into_another_account_unchanged(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(
        command="psql -c 'select 1'",
        output="?column?\n1\n",
        result_type="success",
        exit_code=0,
        execution_time_ms=41,
        session_id="s-1",
        working_directory="/srv/app",
        shell_type="zsh",
        executed_at="2025-03-01T08:00:00.250",
        tags=["db", "prod"],
        is_favorite=True,
    )
    await record(command="echo «ünïcode» ✓", result_type="warning", executed_at="2025-03-02")
    await record(command="false", result_type="error", exit_code=1, executed_at="2025-02-28")
    answer = await _export(client, account, format="json")
    assert answer.headers["content-type"].startswith("application/json")
    exported = data(answer)["commands"]
    assert [e["command"] for e in exported] == ["false", "psql -c 'select 1'", "echo «ünïcode» ✓"]
    other = await register(client)
    for entry in exported:
        imported = {k: v for k, v in entry.items() if k != "id"}
        assert (
            await client.post(COMMANDS, json=imported, headers=other.headers)
        ).status_code == 201
    again = data(await _export(client, other, format="json"))["commands"]
    assert _portable(again) == _portable(exported)


@pytest.mark.parametrize("count", [0, 3])
async def test_a_json_export_is_the_envelope_with_the_entries_under_data_commands(
    client: httpx.AsyncClient, account: Account, record: Record, count: int
) -> None:
    for n in range(count):
        await record(command=f"echo {n}", executed_at=f"2025-03-0{n + 1}")
    answer = await _export(client, account, format="json")
    recent = await client.get("/api/v1/history/recent", headers=account.headers)
    newest_first = data(recent)["commands"]
    body = answer.json()
    assert body == {"success": True, "data": {"commands": newest_first[::-1]}, "message": None}
    assert list(body) == list(recent.json())
    # Rendered as every other answer is: compact, in the envelope's key order.
    assert answer.content.startswith(b'{"success":true,"data":{"commands":[')
    assert answer.content.endswith(b']},"message":null}')


async def test_a_csv_export_has_a_header_and_a_row_per_entry_with_the_filters_applied(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command='echo "a,b"', result_type="error", tags=["x,y", "z"])
    await record(command="ls", result_type="success")
    answer = await _export(client, account, format="csv", result_types="error")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 1
    assert rows[0]["command"] == 'echo "a,b"'
    assert json.loads(rows[0]["tags"]) == ["x,y", "z"]
    assert rows[0]["is_favorite"] == "false"
    assert rows[0]["exit_code"] == ""
    assert set(rows[0]) >= {"id", "command", "output", "result_type", "executed_at", "device_id"}


async def test_csv_cells_a_spreadsheet_would_evaluate_are_quoted(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    commands = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "ls -la"]
    for command in commands:
        await record(command=command)
    answer = await _export(client, account, format="csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["command"] for row in rows] == [*("'" + c for c in commands[:4]), "ls -la"]
    json_export = data(await _export(client, account, format="json"))["commands"]
    assert [entry["command"] for entry in json_export] == commands


async def test_an_export_longer_than_a_page_has_every_entry_once_in_order(
    client: httpx.AsyncClient, account: Account, insert_rows: InsertRows
) -> None:
    rows = history_rows(account.user_id, 2500, seed=11)
    await insert_rows(rows)
    exported = data(await _export(client, account))["commands"]
    expected = sorted(rows, key=lambda row: (row["executed_at"], row["id"]))
    assert [entry["id"] for entry in exported] == [str(row["id"]) for row in expected]


async def test_an_export_in_an_unknown_format_is_a_validation_error(
    client: httpx.AsyncClient, account: Account
) -> None:
    answer = await client.get(EXPORT, params={"format": "xml"}, headers=account.headers)
    error(answer, 422, "validation_error")
