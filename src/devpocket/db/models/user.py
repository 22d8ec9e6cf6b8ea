from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, false
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base, utcnow


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(32))
    # Lowercased username: usernames are unique regardless of case.
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    google_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(String(1000))
    company: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    subscription_tier: Mapped[str] = mapped_column(String(16), default="free")
    trial_ends_at: Mapped[datetime | None]
    subscription_ends_at: Mapped[datetime | None]
    # Kept current by the payment provider's webhook (see devpocket/billing/revenuecat.py).
    subscription_will_renew: Mapped[bool] = mapped_column(default=False, server_default=false())
    subscription_store: Mapped[str | None] = mapped_column(String(32))
    subscription_billing_issue_at: Mapped[datetime | None]
    # The provider's time of the last event applied: an older event arriving late is not applied.
    subscription_updated_at: Mapped[datetime | None]
    two_factor_enabled: Mapped[bool] = mapped_column(default=False)
    email_notifications: Mapped[bool] = mapped_column(default=True)
    push_notifications: Mapped[bool] = mapped_column(default=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    password_changed_at: Mapped[datetime | None]
    # The cursor of the user's last sync change (devpocket.sync.changes); gap-free.
    sync_cursor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
