"""Alembic environment: runs migrations through the async engine, batch mode on SQLite."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import devpocket.db.models  # noqa: F401 - registers every table on the metadata
from devpocket.db.base import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from devpocket.db.base import UTCDateTime")
        return "UTCDateTime()"
    return False


# Full-text search built by hand in 0005, which the models cannot express: SQLite's FTS5 table
# (and the shadow tables FTS5 keeps beside it, command_history_fts_data …), PostgreSQL's generated
# tsvector column and its GIN index. Autogenerate must neither see nor drop them.
_UNMODELLED_TABLE_PREFIX = "command_history_fts"
_UNMODELLED_COLUMNS = frozenset({("command_history", "search_vector")})
_UNMODELLED_INDEXES = frozenset({"ix_command_history_search"})


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(_UNMODELLED_TABLE_PREFIX)
    if type_ == "column":
        return (parent_names.get("table_name"), name) not in _UNMODELLED_COLUMNS
    if type_ == "index":
        return name not in _UNMODELLED_INDEXES
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_name=_include_name,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is unset: run migrations through devpocket.db.migrate")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run against a database.")
run()
