"""One writer at a time on SQLite, queued in the event loop instead of in SQLite's busy handler.

SQLite lets one transaction write at a time. Concurrent writers otherwise wait inside SQLite's
busy handler, which sleeps in steps of up to 100 ms and wakes at random: under a burst of
sign-ins that is seconds of latency. Here a session takes a process-wide lock just before its
first write (a flush with changes, or an INSERT/UPDATE/DELETE statement) and keeps it until its
transaction ends; reads never wait. The lock is taken before SQLite's own transaction begins (the
driver starts it at the first write), so a writer never holds a stale read snapshot either.
PostgreSQL sessions have no lock (``write_lock`` is None).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

_HOLDS = "devpocket.holds_write_lock"


class UnitOfWorkSession(AsyncSession):
    write_lock: asyncio.Lock | None = None

    async def _begin_writing(self) -> None:
        if self.write_lock is not None and not self.info.get(_HOLDS):
            await self.write_lock.acquire()
            self.info[_HOLDS] = True

    def _end_writing(self) -> None:
        if self.info.pop(_HOLDS, False) and self.write_lock is not None:
            self.write_lock.release()

    def _has_changes(self) -> bool:
        return bool(self.new or self.dirty or self.deleted)

    async def flush(self, objects: Any = None) -> None:
        if self._has_changes():
            await self._begin_writing()
        await super().flush(objects)

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(statement, UpdateBase):
            await self._begin_writing()
        return await super().execute(statement, *args, **kwargs)

    async def commit(self) -> None:
        if self._has_changes():
            await self._begin_writing()
        try:
            await super().commit()
        finally:
            self._end_writing()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self._end_writing()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._end_writing()
