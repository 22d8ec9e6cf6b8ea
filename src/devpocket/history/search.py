"""Full-text search over commands and their working directories, ranked, one query per dialect.

Both databases index the same text (the first 8192 characters of the command, then the working
directory) cut into words at punctuation and spaces, so ``/etc/nginx/nginx.conf`` is found by
``nginx`` and ``docker-compose`` by ``compose`` (migration 0005 builds the indexes):

- PostgreSQL: a stored generated ``tsvector`` column ``search_vector`` (``'simple'``
  configuration, no stemming) with a GIN index; ranked by ``ts_rank``.
- SQLite: an FTS5 table ``command_history_fts`` (``unicode61`` tokenizer) kept in step with
  ``command_history`` by triggers; ranked by ``bm25``.

The user's text is never handed to either query language: it is cut into words here (letters and
digits only), each word is matched as a prefix (``doc`` finds ``docker``) and all must match. A
text with no word in it matches nothing, so quotes, ``*``, ``AND``, ``-`` or ``(`` are plain
characters, never syntax.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Float, column, func, literal_column, select, table
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from devpocket.db.models import CommandHistory
from devpocket.history.repository import dialect_of

MAX_TERMS = 16
_WORDS = re.compile(r"[^\W_]+")

# Not on the model: PostgreSQL generates it (migration 0005).
_SEARCH_VECTOR = literal_column("command_history.search_vector", TSVECTOR)
_FTS = table("command_history_fts", column("entry_id"), column("rowid"))
_FTS_TABLE: ColumnElement[Any] = literal_column("command_history_fts")


def search_terms(text: str) -> list[str]:
    """The words of a search text, lowercase, each once, at most ``MAX_TERMS``."""
    words = dict.fromkeys(word.lower() for word in _WORDS.findall(text))
    return list(words)[:MAX_TERMS]


def _postgres_matches(terms: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    # Words hold letters and digits only: nothing in them is tsquery syntax.
    tsquery = func.to_tsquery(
        literal_column("'simple'::regconfig"), " & ".join(f"{term}:*" for term in terms)
    )
    # Negated: lower ranks first on both databases.
    return _SEARCH_VECTOR.bool_op("@@")(tsquery), -func.ts_rank(_SEARCH_VECTOR, tsquery)


def _sqlite_matches(terms: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    # Quoted: a word such as AND or NEAR is a word, not an operator; * marks a prefix.
    match = " ".join(f'"{term}"*' for term in terms)
    # bm25 is lower for better matches.
    return _FTS_TABLE.bool_op("MATCH")(match), func.bm25(_FTS_TABLE, type_=Float)


def _matches(dialect: str, user_id: uuid.UUID, terms: list[str]) -> Subquery:
    """The user's entries matching every term: ``id``, ``rank`` (lower is better), time."""
    if dialect == "postgresql":
        condition, rank = _postgres_matches(terms)
        source: Any = CommandHistory
    else:
        condition, rank = _sqlite_matches(terms)
        source = _FTS.join(CommandHistory, CommandHistory.id == _FTS.c.entry_id)
    return (
        select(CommandHistory.id, rank.label("rank"), CommandHistory.executed_at)
        .select_from(source)
        .where(CommandHistory.user_id == user_id, condition)
        .subquery()
    )


async def search_entries(
    db: AsyncSession, user_id: uuid.UUID, text: str, *, limit: int, offset: int
) -> tuple[list[CommandHistory], int]:
    """A page of the user's entries matching ``text``, best first, and how many match."""
    terms = search_terms(text)
    if not terms:
        return [], 0
    matches = _matches(dialect_of(db), user_id, terms)
    # The page's ids come with the total: ranking reads every match anyway, and a count apart
    # would read them all again. (On SQLite, bm25 must be in a query of its own, hence the
    # subquery; narrow rows, since the window keeps every match until the sort.)
    ranked = select(matches.c.id, func.count().over().label("total")).order_by(
        matches.c.rank, matches.c.executed_at.desc(), matches.c.id.desc()
    )
    page = (await db.execute(ranked.limit(limit).offset(offset))).all()
    if not page:
        # Past the end, a page carries no total.
        total = await db.scalar(select(func.count()).select_from(matches)) if offset else 0
        return [], int(total or 0)
    ids = [row.id for row in page]
    rows = await db.scalars(select(CommandHistory).where(CommandHistory.id.in_(ids)))
    found = {entry.id: entry for entry in rows}
    return [found[entry_id] for entry_id in ids if entry_id in found], int(page[0].total)
