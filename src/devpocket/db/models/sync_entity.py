from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base


class SyncEntity(Base):
    """What the merge rules know of one synced object: its version, tombstone and field stamps."""

    __tablename__ = "sync_entities"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    # The cursor of the entity's last change.
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # {field: {cursor, changed_at, device_id, change_id}}: who last wrote each field, and when.
    field_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
