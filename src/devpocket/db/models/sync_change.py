from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base


class SyncChange(Base):
    """One entry of a user's change feed, numbered by the user's gap-free ``sync_cursor``."""

    __tablename__ = "sync_changes"
    # The base snapshot of a merge: an entity's latest change at or before a cursor.
    __table_args__ = (Index("ix_sync_changes_entity", "user_id", "entity", "entity_id", "cursor"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    cursor: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entity: Mapped[str] = mapped_column(String(16))  # ssh_profile | ssh_key | preferences | history
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    op: Mapped[str] = mapped_column(String(8))  # upsert | delete
    # The synced fields after the change (never a secret); null for a delete.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fields: Mapped[list[str]] = mapped_column(JSON)
    # Not a foreign key: the feed keeps naming a device after it is removed.
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    changed_at: Mapped[datetime]
