"""command history full-text search

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00.000000

Both databases index the same text: the first 8192 characters of the command, then the working
directory, cut into words at ASCII punctuation and spaces (``devpocket/history/search.py`` cuts a
search text the same way).

- PostgreSQL: ``search_vector``, a stored generated ``tsvector`` column (``'simple'``: lowercase,
  no stemming, no stop words), and its GIN index ``ix_command_history_search``. Stored rather than
  an expression index: ranking reads the vector of every match, which an expression index would
  compute again per row.
- SQLite: ``command_history_fts``, an FTS5 table (``unicode61``, which also cuts at punctuation)
  holding its own copy of the text and the entry's id (``entry_id``, unindexed), its rowid that of
  the entry's row; triggers keep it in step on insert, delete and update of the indexed columns.

Also ``ix_command_history_user_favorite`` (on the model), for the favorites filter and count.

The search machinery is not on the models (they cannot express it); ``migrations/env.py`` keeps
autogenerate from proposing to drop it. A later migration that rebuilds ``command_history`` on SQLite (batch
mode copies the table) drops these triggers with the old table: it must create them again and
refill the FTS table (the statements of ``_SQLITE_UP`` below).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The separators are ASCII punctuation and white space (a bracket expression of PostgreSQL's
# regular expressions).
_POSTGRES_UP = (
    """
    ALTER TABLE command_history ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, regexp_replace(
            left(command, 8192) || ' ' || left(coalesce(working_directory, ''), 1024),
            '[[:space:]!-/:-@[-`{-~]+', ' ', 'g'
        ))
    ) STORED
    """,
    "CREATE INDEX ix_command_history_search ON command_history USING gin (search_vector)",
)
_POSTGRES_DOWN = (
    "DROP INDEX IF EXISTS ix_command_history_search",
    "ALTER TABLE command_history DROP COLUMN IF EXISTS search_vector",
)

_SQLITE_UP = (
    """
    CREATE VIRTUAL TABLE command_history_fts USING fts5(
        command, working_directory, entry_id UNINDEXED, tokenize = 'unicode61'
    )
    """,
    """
    INSERT INTO command_history_fts (rowid, command, working_directory, entry_id)
    SELECT rowid, substr(command, 1, 8192), substr(coalesce(working_directory, ''), 1, 1024), id
    FROM command_history
    """,
    """
    CREATE TRIGGER command_history_fts_insert AFTER INSERT ON command_history BEGIN
        INSERT INTO command_history_fts (rowid, command, working_directory, entry_id)
        VALUES (
            new.rowid, substr(new.command, 1, 8192),
            substr(coalesce(new.working_directory, ''), 1, 1024), new.id
        );
    END
    """,
    """
    CREATE TRIGGER command_history_fts_delete AFTER DELETE ON command_history BEGIN
        DELETE FROM command_history_fts WHERE rowid = old.rowid;
    END
    """,
    """
    CREATE TRIGGER command_history_fts_update
    AFTER UPDATE OF command, working_directory ON command_history BEGIN
        DELETE FROM command_history_fts WHERE rowid = old.rowid;
        INSERT INTO command_history_fts (rowid, command, working_directory, entry_id)
        VALUES (
            new.rowid, substr(new.command, 1, 8192),
            substr(coalesce(new.working_directory, ''), 1, 1024), new.id
        );
    END
    """,
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS command_history_fts_update",
    "DROP TRIGGER IF EXISTS command_history_fts_delete",
    "DROP TRIGGER IF EXISTS command_history_fts_insert",
    "DROP TABLE IF EXISTS command_history_fts",
)


def _run(statements: Sequence[str]) -> None:
    # Driver SQL: SQLAlchemy's text() would read the `:space` of the pattern as a parameter.
    connection = op.get_bind()
    for statement in statements:
        connection.exec_driver_sql(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _run(_POSTGRES_UP if dialect == "postgresql" else _SQLITE_UP)
    op.create_index(
        "ix_command_history_user_favorite", "command_history", ["user_id", "is_favorite"]
    )


def downgrade() -> None:
    op.drop_index("ix_command_history_user_favorite", table_name="command_history")
    dialect = op.get_bind().dialect.name
    _run(_POSTGRES_DOWN if dialect == "postgresql" else _SQLITE_DOWN)
