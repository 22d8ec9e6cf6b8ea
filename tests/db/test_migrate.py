"""Migrations build the schema from empty, downgrade to nothing, and match the models."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from devpocket.db import migrate
from devpocket.db.base import Base
from devpocket.db.engine import normalize_database_url
from tests.conftest import IsolatedSettings


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    # SQLite's full-text index of command history (0005) and its shadow tables: not on the models.
    return {name for name in names if not name.startswith("command_history_fts")} - {
        "alembic_version"
    }


async def test_upgrade_downgrade_upgrade_and_no_drift(
    empty_database_url: str, tmp_path: Path
) -> None:
    settings = IsolatedSettings(database_url=empty_database_url, data_dir=tmp_path)
    await anyio.to_thread.run_sync(migrate.upgrade, settings)
    assert await _tables(empty_database_url) == set(Base.metadata.tables)
    await anyio.to_thread.run_sync(migrate.check, settings)
    await anyio.to_thread.run_sync(migrate.downgrade, settings, "base")
    assert await _tables(empty_database_url) == set()
    await anyio.to_thread.run_sync(migrate.upgrade, settings)
    await anyio.to_thread.run_sync(migrate.check, settings)
    assert await _tables(empty_database_url) == set(Base.metadata.tables)


async def test_upgrade_creates_the_default_sqlite_database_for_the_owner_only(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    await anyio.to_thread.run_sync(migrate.upgrade, IsolatedSettings(data_dir=data_dir))
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "devpocket.sqlite3").stat().st_mode) == 0o600
