"""Engine construction: SQLite (aiosqlite, WAL) by default, PostgreSQL (asyncpg) in production."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as _AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry

from devpocket.db.writer import UnitOfWorkSession
from devpocket.settings import Settings, create_private_directory

_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
# libpq spells TLS as sslmode=…; asyncpg takes ssl=….
_QUERY_RENAMES = {"sslmode": "ssl"}


def normalize_database_url(url: str) -> str:
    """Accept the URL forms deployments use and return the async driver's form."""
    scheme, separator, rest = url.partition("://")
    driver = _SCHEMES.get(scheme.lower())
    if not separator or driver is None:
        raise ValueError(f"DATABASE_URL has an unsupported scheme {scheme!r}")
    parsed = make_url(f"{driver}://{rest}")
    if driver.startswith("postgresql"):
        query = {_QUERY_RENAMES.get(k, k): v for k, v in parsed.query.items()}
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False)


def prepare_sqlite_file(url: str) -> None:
    """Create the SQLite database file (mode 0600) and its directory (0700) when missing.

    Left to SQLite, the file would be made 0644, readable by every local user with the password
    hashes inside; its -wal and -shm files take the database file's mode.
    """
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    create_private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    url = normalize_database_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        # Connections beyond pool_size are closed on return; for SQLite each is a thread and a
        # file open, so the pool keeps as many as requests run at once.
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout,
            pool_pre_ping=False,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_recycle=settings.database_pool_recycle,
        pool_pre_ping=True,
        connect_args={"command_timeout": 30, "server_settings": {"application_name": "devpocket"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[_AsyncSession]:
    session_class: type[UnitOfWorkSession] = UnitOfWorkSession
    if engine.dialect.name == "sqlite":
        # One lock per engine (per process): see devpocket/db/writer.py.
        session_class = type(
            "SqliteUnitOfWorkSession", (UnitOfWorkSession,), {"write_lock": asyncio.Lock()}
        )
    return async_sessionmaker(engine, class_=session_class, expire_on_commit=False, autoflush=False)
