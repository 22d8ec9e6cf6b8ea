"""sync feed: the per-user cursor, changes, entity versions and applied pushes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from devpocket.db.base import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sync_cursor", sa.BigInteger(), server_default="0", nullable=False)
        )

    op.create_table(
        "sync_changes",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        _user_fk("sync_changes"),
        sa.PrimaryKeyConstraint("user_id", "cursor", name=op.f("pk_sync_changes")),
    )
    with op.batch_alter_table("sync_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_changes_entity", ["user_id", "entity", "entity_id", "cursor"], unique=False
        )

    op.create_table(
        "sync_entities",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("field_versions", sa.JSON(), nullable=False),
        _user_fk("sync_entities"),
        sa.PrimaryKeyConstraint("user_id", "entity", "entity_id", name=op.f("pk_sync_entities")),
    )

    op.create_table(
        "sync_applied_changes",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        _user_fk("sync_applied_changes"),
        sa.PrimaryKeyConstraint("user_id", "change_id", name=op.f("pk_sync_applied_changes")),
    )


def downgrade() -> None:
    op.drop_table("sync_applied_changes")
    op.drop_table("sync_entities")
    with op.batch_alter_table("sync_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_changes_entity")
    op.drop_table("sync_changes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("sync_cursor")
