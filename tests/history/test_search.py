"""``GET /history/search``: full-text search by word prefixes, ranked, never a syntax error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from devpocket.db import migrate
from devpocket.db.engine import normalize_database_url
from devpocket.db.models import CommandHistory, User
from devpocket.history.search import search_terms
from tests.conftest import IsolatedSettings
from tests.helpers import Account, data, error, register
from tests.history.conftest import COMMANDS, InsertRows, Record, history_rows

SEARCH = "/api/v1/history/search"
# How both databases cut the indexed text into words (migration 0005).
_SEPARATORS = re.compile(r"[\s!-/:-@\[-`{-~]+")


async def _search(client: httpx.AsyncClient, account: Account, q: str, **params: Any) -> Any:
    answer = await client.get(SEARCH, params={"q": q, **params}, headers=account.headers)
    return data(answer)


async def _commands(client: httpx.AsyncClient, account: Account, q: str) -> list[str]:
    return [entry["command"] for entry in (await _search(client, account, q))["commands"]]


def test_search_terms_are_the_words_of_the_text_lowercase() -> None:
    assert search_terms('Docker "compose" AND -up (x*') == ["docker", "compose", "and", "up", "x"]
    assert search_terms('"*()-:^') == []


async def test_a_word_prefix_finds_commands_and_working_directories(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command="docker compose up -d", working_directory="/srv/shop")
    await record(command="vim /etc/nginx/nginx.conf", working_directory="/home/dev")
    await record(command="git log --oneline", working_directory="/srv/blog")
    assert await _commands(client, account, "doc") == ["docker compose up -d"]
    assert await _commands(client, account, "NGINX") == ["vim /etc/nginx/nginx.conf"]
    assert await _commands(client, account, "shop") == ["docker compose up -d"]
    assert sorted(await _commands(client, account, "srv")) == [
        "docker compose up -d",
        "git log --oneline",
    ]
    # Every word must match.
    assert await _commands(client, account, "srv git") == ["git log --oneline"]
    assert await _commands(client, account, "srv nginx") == []


async def test_better_matches_come_first(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command="ls /var/lib/docker/volumes/data", executed_at="2025-01-02T00:00:00")
    await record(command="docker run docker/whalesay", executed_at="2025-01-01T00:00:00")
    found = await _commands(client, account, "docker")
    assert found == ["docker run docker/whalesay", "ls /var/lib/docker/volumes/data"]


async def test_search_syntax_in_the_text_is_plain_characters(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command="docker ps")
    await record(command="echo and or not near")
    for q in ('"', "*", "AND", "-", "(", ")", "'", "\\", ":*", "!", "&|", "^", "{}", "NEAR(a b)",
              "a OR b", "col:val", '"unterminated', "docker AND", "-docker", "doc*", "doc\"",
              "docker)", "a & !b", "<->", "%", "_"):  # fmt: skip
        answer = await client.get(SEARCH, params={"q": q}, headers=account.headers)
        assert answer.status_code == 200, (q, answer.text)
    assert await _commands(client, account, "-docker") == ["docker ps"]
    assert await _commands(client, account, 'doc"') == ["docker ps"]
    assert await _commands(client, account, "AND") == ["echo and or not near"]
    assert (await _search(client, account, '"*()'))["total"] == 0


async def test_an_empty_or_missing_query_is_a_validation_error(
    client: httpx.AsyncClient, account: Account
) -> None:
    error(await client.get(SEARCH, headers=account.headers), 422, "validation_error")
    error(await client.get(f"{SEARCH}?q=", headers=account.headers), 422, "validation_error")


async def test_search_follows_updates_and_deletes(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    entry = await record(command="terraform plan")
    path = f"{COMMANDS}/{entry['id']}"
    answer = await client.put(path, json={"command": "terraform apply"}, headers=account.headers)
    data(answer)
    assert await _commands(client, account, "plan") == []
    assert await _commands(client, account, "apply") == ["terraform apply"]
    data(await client.delete(path, headers=account.headers))
    assert await _commands(client, account, "terraform") == []


async def test_search_never_finds_another_users_commands(
    client: httpx.AsyncClient, account: Account, record: Record
) -> None:
    await record(command="kubectl get pods")
    other = await register(client)
    assert (await _search(client, other, "kubectl"))["total"] == 0


def _words(row: dict[str, Any]) -> list[str]:
    text = f"{row['command'][:8192]} {(row['working_directory'] or '')[:1024]}"
    return [word for word in _SEPARATORS.split(text.lower()) if word]


async def test_search_over_thousands_of_entries_finds_exactly_the_matching_ones(
    client: httpx.AsyncClient, account: Account, insert_rows: InsertRows
) -> None:
    rows = history_rows(account.user_id, 3000)
    await insert_rows(rows)
    for q in ("nginx", "doc", "git fix", "api", "var log", "omega prod", "zzz"):
        terms = search_terms(q)
        expected = {
            str(row["id"])
            for row in rows
            if all(any(word.startswith(t) for word in _words(row)) for t in terms)
        }
        found: list[str] = []
        while True:
            page = await _search(client, account, q, limit=500, offset=len(found))
            found += [entry["id"] for entry in page["commands"]]
            if len(page["commands"]) < 500:
                break
        assert page["total"] == len(expected), q
        assert len(found) == len(set(found)), q
        assert set(found) == expected, q


async def test_the_search_migration_indexes_the_entries_already_there(
    empty_database_url: str, tmp_path: Path
) -> None:
    settings = IsolatedSettings(database_url=empty_database_url, data_dir=tmp_path)
    await anyio.to_thread.run_sync(migrate.upgrade, settings)
    engine = create_async_engine(normalize_database_url(empty_database_url))
    try:
        async with engine.begin() as connection:
            user = {"email": "a@example.com", "username": "old", "username_key": "old"}
            user_id = (await connection.execute(insert(User).returning(User.id), [user])).scalar()
            entry = {"user_id": user_id, "command": "rsync -a /srv backup"}
            await connection.execute(insert(CommandHistory), [entry])
        # Down past the search and up again: the entry was there before the index.
        await anyio.to_thread.run_sync(migrate.downgrade, settings, "0004")
        await anyio.to_thread.run_sync(migrate.upgrade, settings)
        async with engine.connect() as connection:
            found = await _raw_search(connection, "back")
    finally:
        await engine.dispose()
    assert found == ["rsync -a /srv backup"]


async def _raw_search(connection: AsyncConnection, word: str) -> list[str]:
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT command FROM command_history "
            "WHERE search_vector @@ to_tsquery('simple', :q || ':*')"
        )
    else:
        sql = (
            "SELECT command_history.command FROM command_history_fts JOIN command_history "
            "ON command_history.id = command_history_fts.entry_id "
            "WHERE command_history_fts MATCH '\"' || :q || '\"*'"
        )
    return list((await connection.execute(text(sql), {"q": word})).scalars())


@pytest.mark.parametrize(("q", "found"), [("docker", 3), ("x" * 200, 0)])
async def test_a_search_answers_a_page_with_the_total_even_past_the_end(
    client: httpx.AsyncClient, account: Account, record: Record, q: str, found: int
) -> None:
    for _ in range(3):
        await record(command="docker ps")
    first = await _search(client, account, q, limit=2)
    assert (len(first["commands"]), first["total"]) == (min(found, 2), found)
    past = await _search(client, account, q, limit=2, offset=10)
    assert (past["commands"], past["total"]) == ([], found)
