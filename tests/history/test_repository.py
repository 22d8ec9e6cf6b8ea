"""The list's filters, sorts and pages over thousands of entries agree with a plain reference."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from devpocket.db.models import Device
from tests.helpers import Account, data
from tests.history.conftest import COMMANDS, START, InsertRows, history_rows

Row = dict[str, Any]
Check = tuple[dict[str, Any], Callable[[Row], bool], Callable[[Row], Any], bool]


WINDOW = ("2025-01-10T00:00:00", "2025-01-20T12:00:00.000")


def _key(row: Row) -> tuple[datetime, uuid.UUID]:
    """The default order, and the tiebreak of equal sort values in the sort's direction."""
    return row["executed_at"], row["id"]


def _in_window(row: Row) -> bool:
    start, end = (datetime.fromisoformat(t).replace(tzinfo=START.tzinfo) for t in WINDOW)
    executed_at: datetime = row["executed_at"]
    return start <= executed_at <= end


def _filter_checks(session: str, profile: uuid.UUID, device: uuid.UUID) -> list[Check]:
    """(query parameters, which rows match, sort key, descending): filters, newest first."""
    cases: list[tuple[dict[str, Any], Callable[[Row], bool]]] = [
        ({}, lambda r: True),
        ({"result_types": "error,warning"}, lambda r: r["result_type"] in {"error", "warning"}),
        ({"tags": "deploy"}, lambda r: "deploy" in r["tags"]),
        ({"tags": ["deploy", "PROD"]}, lambda r: {"deploy", "prod"} <= set(r["tags"])),
        ({"session_id": session}, lambda r: r["session_id"] == session),
        ({"ssh_profile_id": str(profile)}, lambda r: r["ssh_profile_id"] == profile),
        ({"device_id": str(device)}, lambda r: r["device_id"] == device),
        ({"favorites_only": "true"}, lambda r: r["is_favorite"]),
        ({"query": "NGINX"}, lambda r: "nginx" in r["command"]),
        ({"query": "_%"}, lambda r: "_%" in r["command"]),
        ({"start_date": WINDOW[0], "end_date": WINDOW[1]}, _in_window),
    ]
    return [(params, matches, _key, True) for params, matches in cases]


def _sort_checks() -> list[Check]:
    """Each sort field, NULLs last in both directions."""
    return [
        (
            {"sort_by": "command", "sort_desc": "false"},
            lambda r: True,
            lambda r: (r["command"], *_key(r)),
            False,
        ),
        (
            {"sort_by": "execution_time_ms", "result_types": "success"},
            lambda r: r["result_type"] == "success",
            lambda r: (r["execution_time_ms"] is not None, r["execution_time_ms"] or 0, *_key(r)),
            True,
        ),
        (
            {"sort_by": "exit_code", "sort_desc": "false", "favorites_only": "true"},
            lambda r: r["is_favorite"],
            lambda r: (r["exit_code"] is None, r["exit_code"] or 0, *_key(r)),
            False,
        ),
    ]


async def _devices(app: FastAPI, user_id: str, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [{"id": i, "user_id": uuid.UUID(user_id), "name": f"device {i}"} for i in ids]
    async with app.state.ctx.engine.begin() as connection:
        await connection.execute(insert(Device), rows)
    return ids


async def _profiles(client: httpx.AsyncClient, account: Account, count: int) -> list[uuid.UUID]:
    ids = []
    for n in range(count):
        body = {"name": f"host {n}", "host": f"h{n}.example.com", "username": "deploy"}
        answer = await client.post("/api/v1/ssh/profiles", json=body, headers=account.headers)
        ids.append(uuid.UUID(data(answer, 201)["id"]))
    return ids


async def test_filters_sorts_and_pages_over_thousands_of_entries_match_a_reference(
    app_client: tuple[FastAPI, httpx.AsyncClient], account: Account, insert_rows: InsertRows
) -> None:
    client = app_client[1]
    devices = await _devices(app_client[0], account.user_id, 3)
    profiles = await _profiles(client, account, 2)
    rows = history_rows(account.user_id, 3000, devices=[*devices, None], profiles=[*profiles, None])
    await insert_rows(rows)
    checks = [*_filter_checks("s-3", profiles[0], devices[1]), *_sort_checks()]
    for params, matches, key, descending in checks:
        expected = sorted((r for r in rows if matches(r)), key=key, reverse=descending)
        for offset in (0, 120):
            query = {**params, "limit": 60, "offset": offset}
            page = data(await client.get(COMMANDS, params=query, headers=account.headers))
            assert page["total"] == len(expected), params
            wanted = [str(r["id"]) for r in expected[offset : offset + 60]]
            assert [entry["id"] for entry in page["commands"]] == wanted, params
