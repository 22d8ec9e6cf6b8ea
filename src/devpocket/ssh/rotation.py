"""Re-encrypting the SSH vault under the keyring's current key while servers keep running.

Rotation without downtime, for a configured ENCRYPTION_KEY:
1. add the new key to ENCRYPTION_KEY after the current one and roll it out to every server, so
   that every server can read what the new key will write;
2. move it to the front (it becomes current) and roll that out;
3. run ``devpocket rotate-encryption-key``; 4. once it reports nothing left under the old key and
   nothing unreadable, drop the old key.

The walk goes in batches ordered by id, each its own short transaction, so it never holds locks
for long. Each update is conditional on the ciphertext it read: a secret that a server changed in
the meantime is left as the server wrote it (it is under a key of the keyring either way).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.db.engine import create_engine, create_sessionmaker
from devpocket.db.models import SshKey, SshProfile
from devpocket.settings import ConfigurationError, Settings
from devpocket.ssh.secrets import (
    DEV_KEYRING_FILE,
    SecretBox,
    SecretUnreadable,
    context_for,
    generate_key_entry,
    prepend_key_to_file,
)

# Every encrypted column of the vault, by table.
VAULT_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ssh_keys", ("private_key_encrypted", "passphrase_encrypted")),
    ("ssh_profiles", ("password_encrypted", "private_key_encrypted", "passphrase_encrypted")),
)


@dataclass
class ColumnCounts:
    re_encrypted: int = 0
    already_current: int = 0
    unreadable: int = 0
    # Rewritten by a server between this walk's read and its update: left as the server wrote it.
    changed_meanwhile: int = 0
    unreadable_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class RotationReport:
    current_key_id: str
    # Keyed by (table, column), in VAULT_COLUMNS order.
    columns: dict[tuple[str, str], ColumnCounts] = field(default_factory=dict)

    @classmethod
    def for_key(cls, current_key_id: str) -> RotationReport:
        report = cls(current_key_id)
        for table, columns in VAULT_COLUMNS:
            for column in columns:
                report.columns[(table, column)] = ColumnCounts()
        return report

    @property
    def re_encrypted(self) -> int:
        return sum(counts.re_encrypted for counts in self.columns.values())

    @property
    def already_current(self) -> int:
        return sum(counts.already_current for counts in self.columns.values())

    @property
    def unreadable(self) -> int:
        return sum(counts.unreadable for counts in self.columns.values())

    def summary(self) -> list[str]:
        """One line per column, then the unreadable rows by id (for the command's output)."""
        lines = [f"current key: {self.current_key_id}"]
        for (table, column), counts in self.columns.items():
            lines.append(
                f"{table}.{column}: {counts.re_encrypted} re-encrypted, "
                f"{counts.already_current} already current, {counts.unreadable} unreadable, "
                f"{counts.changed_meanwhile} changed meanwhile"
            )
            lines.extend(f"  unreadable: {table} {row_id}" for row_id in counts.unreadable_ids)
        return lines


_TABLES: dict[str, Table] = {
    model.__tablename__: model.__table__  # type: ignore[misc]
    for model in (SshKey, SshProfile)
}


async def rotate_encryption(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox, *, batch_size: int = 200
) -> RotationReport:
    """Re-encrypt every vault secret not under ``box``'s current key; never deletes anything."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport.for_key(box.keyring.current_id)
    for table_name, columns in VAULT_COLUMNS:
        # Through the models: importing them is what puts their tables on the metadata.
        table = _TABLES[table_name]
        after: uuid.UUID | None = None
        while True:
            async with sessionmaker() as session:
                rows = await _batch(session, table, columns, after, batch_size)
                for row in rows:
                    await _rotate_row(session, box, table, columns, row, report)
                await session.commit()
            if len(rows) < batch_size:
                break
            after = rows[-1].id
    return report


async def _batch(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[Row[Any]]:
    # Keyset pagination: each batch starts after the last id seen, whatever was inserted since.
    query = select(table.c.id, *(table.c[column] for column in columns))
    if after is not None:
        query = query.where(table.c.id > after)
    result = await session.execute(query.order_by(table.c.id).limit(limit))
    return result.all()


async def _rotate_row(
    session: AsyncSession,
    box: SecretBox,
    table: Table,
    columns: Sequence[str],
    row: Row[Any],
    report: RotationReport,
) -> None:
    for column in columns:
        token: str | None = row._mapping[column]
        if token is not None:
            counts = report.columns[(table.name, column)]
            await _rotate_secret(session, box, table, column, row.id, token, counts)


async def _rotate_secret(
    session: AsyncSession,
    box: SecretBox,
    table: Table,
    column: str,
    row_id: uuid.UUID,
    token: str,
    counts: ColumnCounts,
) -> None:
    # Services bind a secret to its field's name ("password"), not the column's.
    context = context_for(table.name, row_id, column.removesuffix("_encrypted"))
    try:
        if box.is_current(token):
            counts.already_current += 1
            return
        plaintext = box.decrypt(token, context=context)
    except SecretUnreadable:
        counts.unreadable += 1
        counts.unreadable_ids.append(row_id)
        return
    statement = (
        update(table)
        .where(table.c.id == row_id, table.c[column] == token)
        # Re-encryption changes no content: keep updated_at, which sync compares.
        .values({column: box.encrypt(plaintext, context=context), "updated_at": table.c.updated_at})
        .returning(table.c.id)
    )
    if (await session.execute(statement)).first() is None:
        counts.changed_meanwhile += 1
    else:
        counts.re_encrypted += 1


def rotate_encryption_command(settings: Settings, *, generate: bool) -> RotationReport:
    """The ``devpocket rotate-encryption-key`` command's work.

    With ``generate``, a new key first becomes current in the development keyring file. A
    development server already running holds the keyring it started with: restart it, or the
    secrets this walk re-encrypts are unreadable to it.
    """
    if generate:
        _prepend_generated_key(settings)
    box = SecretBox.from_text(settings.encryption_keyring_text())
    return asyncio.run(_rotate_on_own_engine(settings, box))


def _prepend_generated_key(settings: Settings) -> None:
    configured = settings.encryption_key
    if configured is not None and configured.get_secret_value().strip():
        raise ConfigurationError(
            "ENCRYPTION_KEY is set, so --generate cannot change it: put a new entry (from "
            "`python -c 'from devpocket.ssh.secrets import generate_key_entry; "
            "print(generate_key_entry())'`) first in ENCRYPTION_KEY on every server, keeping the "
            "old ones after it, restart them, then run rotate-encryption-key without --generate"
        )
    settings.encryption_keyring_text()  # outside development: refuses, naming ENCRYPTION_KEY
    prepend_key_to_file(settings.data_dir / DEV_KEYRING_FILE, generate_key_entry())


async def _rotate_on_own_engine(settings: Settings, box: SecretBox) -> RotationReport:
    engine = create_engine(settings)
    try:
        return await rotate_encryption(create_sessionmaker(engine), box)
    finally:
        await engine.dispose()
