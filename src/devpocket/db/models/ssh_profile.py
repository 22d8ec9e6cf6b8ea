from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base, utcnow


class SshProfile(Base):
    """A saved host. Credentials are stored only encrypted (devpocket.ssh.secrets)."""

    __tablename__ = "ssh_profiles"

    # The app's sync upload chooses the id; a repeat of it updates.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    username: Mapped[str] = mapped_column(String(100))
    auth_type: Mapped[str] = mapped_column(String(16), default="PASSWORD")
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)
    passphrase_encrypted: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ssh_keys.id", ondelete="SET NULL"), index=True
    )
    jump_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ssh_profiles.id", ondelete="SET NULL")
    )
    description: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    color: Mapped[str | None] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    last_connected_at: Mapped[datetime | None]
    host_key_type: Mapped[str | None] = mapped_column(String(64))
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(100))
    # The key a server presented instead of the pinned one, until the user accepts or ignores it.
    pending_host_key_type: Mapped[str | None] = mapped_column(String(64))
    pending_host_key_fingerprint: Mapped[str | None] = mapped_column(String(100))
    # Strict: no trust on first use; the fingerprint must be known before connecting.
    strict_host_key: Mapped[bool] = mapped_column(Boolean, default=False)
    keepalive_interval: Mapped[int] = mapped_column(Integer, default=30)
    connect_timeout: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
