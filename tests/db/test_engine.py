"""Database URLs in every form deployments use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from devpocket.db.engine import create_engine, normalize_database_url
from tests.conftest import IsolatedSettings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("postgresql://u:p%40ss@h/db", "postgresql+asyncpg://u:p%40ss@h/db"),
        (
            "sqlite:////var/lib/devpocket/db.sqlite3",
            "sqlite+aiosqlite:////var/lib/devpocket/db.sqlite3",
        ),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "no-scheme"])
def test_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        normalize_database_url(url)


async def test_a_new_sqlite_database_and_its_wal_are_for_the_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "db" / "app.sqlite3"
    engine = create_engine(
        IsolatedSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{database}")
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE probe (x INTEGER)"))
            # While a connection is open, SQLite keeps the -wal and -shm files beside the database.
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in database.parent.iterdir()}
    finally:
        await engine.dispose()
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    assert modes == {"app.sqlite3": 0o600, "app.sqlite3-wal": 0o600, "app.sqlite3-shm": 0o600}
