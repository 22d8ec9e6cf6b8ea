"""The change feed: recording a change in the transaction that makes it, and telling devices.

Every change gets the next value of the user's ``users.sync_cursor``. The increment is an
``UPDATE … RETURNING`` on the user's row, which holds the row lock until the transaction ends:
a second transaction recording for the same user waits, and numbers its change only after the
first has committed (or rolled back, giving its number back). So cursors are gap-free and in
commit order, and a reader that has seen cursor ``n`` has seen every change up to ``n``. An
autoincrement id would not do: two transactions may commit out of id order, and a reader paging
in between would step over the one still uncommitted.

A transaction that writes several synced rows (a push) takes the same lock first, with
:func:`lock_feed`; so do the services that write more than one synced row, so that transactions
of one user meet at the user's row before any other (no lock-order deadlock).

After commit, one notice per user goes to the broker channel ``sync.user.<user_id>`` with the
newest cursor: open ``/ws/sync`` sockets and ``/sync/events`` streams on every node pass it on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog
from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.broker import Broker, BrokerUnavailable
from devpocket.db.hooks import after_commit
from devpocket.db.models import SyncChange, SyncEntity, User

Entity = Literal["ssh_profile", "ssh_key", "preferences", "history"]
Op = Literal["upsert", "delete"]
ENTITIES: tuple[Entity, ...] = ("ssh_profile", "ssh_key", "preferences", "history")

log = structlog.get_logger(__name__)
_BROKER = "devpocket.sync.broker"
_PENDING = "devpocket.sync.pending"
_HELD = "devpocket.sync.held"
_KEPT = "devpocket.sync.kept"
_ABSENT = "devpocket.sync.absent"


def channel(user_id: uuid.UUID) -> str:
    return f"sync.user.{user_id}"


def carry_broker(sessionmaker: async_sessionmaker[AsyncSession], broker: Broker) -> None:
    """Let every session of the app announce its changes after commit through ``broker``.

    Services that record changes do not all hold the app context; the session they write with
    does belong to the app, so it carries the broker in ``Session.info``.
    """
    sessionmaker.configure(info={_BROKER: broker})


@dataclass(frozen=True, slots=True)
class Origin:
    """Who made a change and when: the device, its clock, and a pushed change's client id."""

    device_id: uuid.UUID | None
    changed_at: datetime
    change_id: uuid.UUID | None = None

    @classmethod
    def now(cls, device_id: uuid.UUID | None = None) -> Origin:
        return cls(device_id, datetime.now(UTC))


# Built once: constructing an ORM statement costs more than running it on a cheap push.
# updated_at is named so that its onupdate default does not fire: the feed is not the profile.
_CURSOR_STEP = (
    update(User)
    .where(User.id == bindparam("user_id"))
    .values(sync_cursor=User.sync_cursor + bindparam("step"), updated_at=User.updated_at)
    .returning(User.sync_cursor)
    .execution_options(synchronize_session=False)
)


async def _step_cursor(db: AsyncSession, user_id: uuid.UUID, step: int) -> int:
    """Add ``step`` to the user's cursor (locking the user's row) and answer the new value."""
    return int((await db.execute(_CURSOR_STEP, {"user_id": user_id, "step": step})).scalar_one())


async def lock_feed(db: AsyncSession, user_id: uuid.UUID) -> bool:
    """Take the user's feed lock for the rest of the transaction.

    True when taken now (rows read before it may be stale: reload them); False when this
    transaction already holds it. An UPDATE rather than SELECT … FOR UPDATE: it takes
    PostgreSQL's row lock (in the ``FOR NO KEY UPDATE`` strength, which leaves foreign-key
    checks of other rows unblocked) and, on SQLite, the process's writer lock before anything
    is read (devpocket/db/writer.py).
    """
    if _holds(db, user_id):
        return False
    await _step_cursor(db, user_id, 0)
    _held(db, user_id)
    return True


def _holds(db: AsyncSession, user_id: uuid.UUID) -> bool:
    held: tuple[object, set[uuid.UUID]] | None = db.info.get(_HELD)
    return held is not None and held[0] is db.sync_session.get_transaction() and user_id in held[1]


def _held(db: AsyncSession, user_id: uuid.UUID) -> None:
    """Remember the lock for this transaction. (A savepoint's rollback may release a lock taken
    inside it: a transaction that uses savepoints takes the lock before the first.)"""
    transaction = db.sync_session.get_transaction()
    held: tuple[object, set[uuid.UUID]] | None = db.info.get(_HELD)
    if held is None or held[0] is not transaction:
        held = db.info[_HELD] = (transaction, set())
    held[1].add(user_id)


async def record_change(
    db: AsyncSession,
    user_id: uuid.UUID,
    entity: Entity,
    entity_id: uuid.UUID,
    op: Op,
    data: dict[str, Any] | None,
    *,
    fields: list[str],
    device_id: uuid.UUID | None,
    changed_at: datetime,
    change_id: uuid.UUID | None = None,
) -> int:
    """Add a change to the user's feed and stamp the entity's fields; returns its cursor."""
    cursor = await _step_cursor(db, user_id, 1)
    _held(db, user_id)
    db.add(
        SyncChange(
            user_id=user_id,
            cursor=cursor,
            entity=entity,
            entity_id=entity_id,
            op=op,
            data=data if op == "upsert" else None,
            fields=fields,
            device_id=device_id,
            changed_at=changed_at,
        )
    )
    stamp = {
        "cursor": cursor,
        "changed_at": changed_at.astimezone(UTC).isoformat(),
        "device_id": str(device_id) if device_id else None,
        "change_id": str(change_id) if change_id else None,
    }
    await _stamp_entity(db, (user_id, entity, entity_id), op, fields, stamp)
    # Written now, so that later lookups of the entity in this transaction find it in the session.
    await db.flush()
    announce(db, user_id, cursor, device_id)
    return cursor


async def _stamp_entity(
    db: AsyncSession,
    key: tuple[uuid.UUID, Entity, uuid.UUID],
    op: Op,
    fields: list[str],
    stamp: dict[str, Any],
) -> None:
    """The entity's version is the change's cursor; each field it set remembers its writer."""
    absent = _absent(db)
    state = None if key in absent else await db.get(SyncEntity, key)
    absent.discard(key)
    if state is None:
        user_id, entity, entity_id = key
        state = SyncEntity(user_id=user_id, entity=entity, entity_id=entity_id, field_versions={})
        db.add(state)
    keep(db, key, state)
    state.version = stamp["cursor"]
    state.deleted = op == "delete"
    # A new dict: the JSON column notices assignment, not changes inside.
    stamps = {} if op == "delete" else dict(state.field_versions or {})
    state.field_versions = stamps | dict.fromkeys(fields, stamp)


def keep(
    db: AsyncSession, key: tuple[uuid.UUID, Entity, uuid.UUID], state: SyncEntity | None
) -> None:
    """Hold an entity's state for the session's life (the identity map holds rows weakly, and a
    push looks each one up several times: its merge, its change, its answer), or remember that
    it has none yet, which recording its first change then need not ask again."""
    if state is None:
        _absent(db).add(key)
    else:
        db.info.setdefault(_KEPT, []).append(state)


def _absent(db: AsyncSession) -> set[tuple[uuid.UUID, Entity, uuid.UUID]]:
    """Entities known to have no state yet, in this transaction (the feed lock keeps it true)."""
    transaction = db.sync_session.get_transaction()
    known: tuple[object, set[tuple[uuid.UUID, Entity, uuid.UUID]]] | None = db.info.get(_ABSENT)
    if known is None or known[0] is not transaction:
        known = db.info[_ABSENT] = (transaction, set())
    return known[1]


@dataclass(frozen=True, slots=True)
class Notice:
    cursor: int
    device_id: uuid.UUID | None

    def encode(self) -> bytes:
        device = str(self.device_id) if self.device_id else None
        return orjson.dumps({"cursor": self.cursor, "device_id": device})


def announce(
    db: AsyncSession, user_id: uuid.UUID, cursor: int, device_id: uuid.UUID | None
) -> None:
    """After commit, tell the user's devices that the feed reaches ``cursor`` (the last call of
    a transaction wins)."""
    pending: dict[uuid.UUID, Notice] = db.info.setdefault(_PENDING, {})
    pending[user_id] = Notice(cursor, device_id)
    broker: Broker | None = db.info.get(_BROKER)
    if broker is None:
        return

    async def publish() -> None:
        notices: dict[uuid.UUID, Notice] = db.info.pop(_PENDING, {})
        try:
            for owner, notice in notices.items():
                await broker.publish(channel(owner), notice.encode())
        except BrokerUnavailable:
            # The changes are committed and in the feed; only the nudge is lost, and devices
            # also look at the feed when they connect.
            log.warning("sync.notice_failed", users=len(notices))

    # One callback per change: the first to run publishes the newest notices, the rest none.
    after_commit(db, publish)
