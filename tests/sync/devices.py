"""Simulated sync clients: each is one login of the user with its own device id and local copy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers import PASSWORD, Account, data

SYNC = "/api/v1/sync"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
Key = tuple[str, str]


def at(seconds: float) -> str:
    """A fixed device clock reading: the same in every push order of a test."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat()


@dataclass
class Device:
    client: httpx.AsyncClient
    headers: dict[str, str]
    device_id: str
    cursor: int = 0
    local: dict[Key, dict[str, Any]] = field(default_factory=dict)
    versions: dict[Key, int] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)

    async def pull(self, *, limit: int = 500) -> int:
        """Page through the feed from the device's cursor; returns how many changes came."""
        seen = 0
        while True:
            params = {"since": self.cursor, "limit": limit}
            page = data(
                await self.client.get(f"{SYNC}/changes", params=params, headers=self.headers)
            )
            for change in page["changes"]:
                self._take(change)
            seen += len(page["changes"])
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return seen

    def _take(self, change: dict[str, Any]) -> None:
        key = (change["entity"], change["entity_id"])
        self.versions[key] = change["cursor"]
        if change["op"] == "delete":
            self.local.pop(key, None)
        else:
            self.local[key] = change["data"]

    def edit(self, entity: str, entity_id: str, when: float, **fields: Any) -> str:
        """Change fields offline; the change waits for the next push."""
        key = (entity, entity_id)
        self.local[key] = {**self.local.get(key, {}), **fields}
        return self._queue(entity, entity_id, "upsert", when, fields)

    def delete(self, entity: str, entity_id: str, when: float) -> str:
        self.local.pop((entity, entity_id), None)
        return self._queue(entity, entity_id, "delete", when, {})

    def _queue(self, entity: str, entity_id: str, op: str, when: float, fields: Any) -> str:
        change_id = str(uuid.uuid4())
        self.pending.append(
            {
                "change_id": change_id,
                "entity": entity,
                "entity_id": entity_id,
                "op": op,
                "base_version": self.versions.get((entity, entity_id), 0),
                "changed_at": at(when),
                "data": fields,
            }
        )
        return change_id

    async def push(self, changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        batch = self.pending if changes is None else changes
        body = {"device_id": self.device_id, "changes": batch}
        answer: dict[str, Any] = data(
            await self.client.post(f"{SYNC}/push", json=body, headers=self.headers)
        )
        if changes is None:
            self.pending = []
        return answer


async def login_device(client: httpx.AsyncClient, account: Account, name: str) -> Device:
    """Another login of the account, as a device of its own (the id is the device's choice)."""
    device_id = str(uuid.uuid4())
    body = {
        "email": account.email,
        "password": PASSWORD,
        "device_id": device_id,
        "device_name": name,
    }
    signed_in = data(await client.post("/api/v1/auth/login", json=body))
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    return Device(client, headers, device_id)
