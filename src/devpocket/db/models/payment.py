from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base


class Payment(Base):
    """A charge (or a refund, negative) reported by a payment provider, for the user's history."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_user_created", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    # The provider's event that reported it: one payment per event, whatever the retries.
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # Millionths of the currency unit: exact for every currency, without DECIMAL's portability
    # trouble on SQLite.
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    tier: Mapped[str | None] = mapped_column(String(16))
    product_id: Mapped[str | None] = mapped_column(String(200))
    store: Mapped[str | None] = mapped_column(String(32))
    environment: Mapped[str | None] = mapped_column(String(16))
    period_type: Mapped[str | None] = mapped_column(String(16))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    # When the provider says the event happened (not when it reached us): history sorts by it.
    created_at: Mapped[datetime]
