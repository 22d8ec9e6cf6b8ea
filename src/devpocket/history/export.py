"""A user's history as a file, streamed a page at a time: JSON or CSV.

JSON is the envelope of every JSON answer, ``{"success":true,"data":{"commands":[...]},
"message":null}``, with each entry as the API answers it, so each can be posted back to
``POST /history/commands`` (into another account too). CSV has a header row with the same keys;
``tags`` is a JSON array in its cell, so tags holding commas survive, and a text cell that a
spreadsheet would take for a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) gets a leading ``'`` (OWASP's advice against CSV injection). Entries come in the order
they ran. Each page is read in a short session of its own: an export of a long history holds no
connection or transaction while the client downloads.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.envelope import ok
from devpocket.history import repository
from devpocket.history.schemas import CommandOut, HistoryFilters
from devpocket.history.service import entry_out

PAGE = 1000
COLUMNS = tuple(CommandOut.model_fields)
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}

# The envelope as ``envelope.py`` renders it, cut at the empty list, so that the entries stream
# into it a page at a time and its keys and their order follow every other answer.
_NO_COMMANDS: dict[str, list[CommandOut]] = {"commands": []}
_JSON_HEAD, _, _JSON_TAIL = ok(_NO_COMMANDS).model_dump_json().encode().partition(b"[]")


def filename(export_format: str, now: datetime) -> str:
    return f"devpocket-history-{now:%Y%m%d-%H%M%S}.{export_format}"


async def _pages(
    sessionmaker: async_sessionmaker[AsyncSession], user_id: uuid.UUID, filters: HistoryFilters
) -> AsyncIterator[list[CommandOut]]:
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessionmaker() as db:
            page = await repository.export_page(db, user_id, filters, after, PAGE)
            rendered = [entry_out(entry) for entry in page]
        if rendered:
            yield rendered
        if len(page) < PAGE:
            return
        after = (page[-1].executed_at, page[-1].id)


async def _json(pages: AsyncIterator[list[CommandOut]]) -> AsyncIterator[bytes]:
    yield _JSON_HEAD + b"["
    separator = b""
    async for page in pages:
        yield separator + b",".join(entry.model_dump_json().encode() for entry in page)
        separator = b","
    yield b"]" + _JSON_TAIL


# What spreadsheets read as the start of a formula (or, for tab and CR, skip before one).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def _csv(pages: AsyncIterator[list[CommandOut]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    async for page in pages:
        writer.writerows([_cell(getattr(entry, key)) for key in COLUMNS] for entry in page)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    filters: HistoryFilters,
    export_format: str,
) -> AsyncIterator[bytes]:
    pages = _pages(sessionmaker, user_id, filters)
    return _csv(pages) if export_format == "csv" else _json(pages)
