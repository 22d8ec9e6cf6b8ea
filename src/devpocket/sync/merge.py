"""The conflict rules of a pushed change, as a pure function of both sides (docs/sync.md).

A pushed upsert writes the fields whose value differs from the entity at the change's base
version; fields it sends unchanged are not claimed. Then:

- based on the current version (or later), or on one that only the same device changed since:
  the writes apply;
- otherwise: a field no other device has changed since the base takes the client's value; a
  field both sides changed goes to the later writer by ``changed_at``, ties broken by device
  id, then change id (the greater string wins), so every node and every push order picks the
  same winner;
- an upsert of an entity deleted after its base is rejected (deletes win over stale updates); one
  based on the delete or later creates it again;
- a delete deletes, also when the server changed the entity since its base: those changes are
  reported as conflicts the delete won; deleting what the server does not have is already done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["applied", "merged", "conflict_resolved", "rejected"]
Action = Literal["create", "update", "delete", "none"]
Winner = Literal["server", "client"]
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Stamp:
    """Who last wrote a field: the change's cursor, the writer's clock, device and change id."""

    cursor: int
    changed_at: datetime
    device_id: str | None = None
    change_id: str | None = None

    def key(self) -> tuple[datetime, str, str]:
        return (self.changed_at, self.device_id or "", self.change_id or "")


@dataclass(frozen=True, slots=True)
class ServerState:
    exists: bool
    deleted: bool = False
    version: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    stamps: dict[str, Stamp] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClientChange:
    op: Literal["upsert", "delete"]
    base_version: int
    stamp: Stamp  # its cursor is unused: the change has none yet
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldConflict:
    field: str
    server_value: Any
    client_value: Any
    winner: Winner


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    status: Status
    # Fields to write with the client's values.
    writes: dict[str, Any] = field(default_factory=dict)
    conflicts: list[FieldConflict] = field(default_factory=list)
    # Fields whose value stays but whose last writer becomes the client (it won with the same
    # value): keeps later comparisons the same in every push order.
    restamp: list[str] = field(default_factory=list)
    reason: str | None = None


def decide(server: ServerState, client: ClientChange, base: dict[str, Any] | None) -> Decision:
    """``base``: the entity's synced fields at the change's base version, when known."""
    if client.op == "delete":
        return _delete(server, client)
    if not server.exists:
        if server.deleted and client.base_version < server.version:
            return Decision("none", "rejected", reason="entity_deleted")
        return Decision("create", "applied", writes=dict(client.data))
    if not _changed_since(server, client):
        writes = {f: v for f, v in client.data.items() if server.data.get(f, _ABSENT) != v}
        return Decision("update", "applied", writes=writes)
    return _merge(server, client, base)


def _delete(server: ServerState, client: ClientChange) -> Decision:
    if not server.exists:
        return Decision("none", "merged")  # already gone (or never here): nothing to undo
    newer = _changed_since(server, client)
    conflicts = [FieldConflict(f, server.data.get(f), None, "client") for f in newer]
    return Decision("delete", "conflict_resolved" if conflicts else "applied", conflicts=conflicts)


def _changed_since(server: ServerState, client: ClientChange) -> list[str]:
    """Fields another device wrote after the change's base. The device's own later writes are
    not news to it (a batch of its changes all carry the base it had when offline)."""
    if client.base_version >= server.version:
        return []
    return sorted(f for f, stamp in server.stamps.items() if _unseen(stamp, client))


def _unseen(stamp: Stamp | None, client: ClientChange) -> bool:
    if stamp is None or stamp.cursor <= client.base_version:
        return False
    return stamp.device_id is None or stamp.device_id != client.stamp.device_id


def _claimed(client: ClientChange, base: dict[str, Any] | None) -> dict[str, Any]:
    """The fields the client changed: those that differ from the base (all when it is unknown)."""
    if base is None:
        return dict(client.data)
    return {f: v for f, v in client.data.items() if base.get(f, _ABSENT) != v}


def _merge(server: ServerState, client: ClientChange, base: dict[str, Any] | None) -> Decision:
    writes: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    restamp: list[str] = []
    for name, value in _claimed(client, base).items():
        current = server.data.get(name, _ABSENT)
        stamp = server.stamps.get(name)
        if stamp is None or not _unseen(stamp, client):
            if current != value:
                writes[name] = value
            continue
        client_wins = client.stamp.key() > stamp.key()
        if current == value:
            # Both wrote the same value: no conflict, but the later writer is remembered.
            if client_wins:
                restamp.append(name)
            continue
        winner: Winner = "client" if client_wins else "server"
        conflicts.append(FieldConflict(name, server.data.get(name), value, winner))
        if client_wins:
            writes[name] = value
    status: Status = "conflict_resolved" if conflicts else "merged"
    return Decision("update", status, writes=writes, conflicts=conflicts, restamp=restamp)
