"""``GET /sync/events``: the same notices as server-sent events, for clients without WebSockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.helpers import register
from tests.sync.devices import SYNC, Device, login_device
from tests.terminal.live import LiveServer, live_server


@pytest.fixture
async def live(settings_factory: SettingsFactory) -> AsyncIterator[LiveServer]:
    async with live_server(settings_factory(terminal_heartbeat_seconds=0.3)) as server:
        yield server


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    kind = None
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind is not None:
            yield kind, json.loads(line.removeprefix("data: "))


async def _next(events: AsyncIterator[tuple[str, Any]], kind: str) -> Any:
    async with asyncio.timeout(2.0):
        async for name, payload in events:
            if name == kind:
                return payload
    raise AssertionError(f"the stream ended before a {kind} event")


def _push_profile(device: Device) -> None:
    device.edit("ssh_profile", str(uuid.uuid4()), 1, name="a", host="a.example.com", username="u")


async def test_events_announce_other_devices_changes_until_sign_out(live: LiveServer) -> None:
    account = await register(live.http)
    phone = await login_device(live.http, account, "phone")
    laptop = await login_device(live.http, account, "laptop")
    params = {"device_id": laptop.device_id}
    async with live.http.stream(
        "GET", f"{SYNC}/events", params=params, headers=laptop.headers
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream.aiter_lines())
        assert await _next(events, "sync") == {"cursor": 0, "device_id": None}
        _push_profile(laptop)
        await laptop.push()  # its own: not announced
        _push_profile(phone)
        await phone.push()
        assert await _next(events, "sync") == {"cursor": 2, "device_id": phone.device_id}
        assert await _next(events, "heartbeat") == "ping"
        # Signed out: the next heartbeat's check ends the stream with the reason.
        await live.http.post("/api/v1/auth/logout", headers=laptop.headers)
        assert (await _next(events, "error"))["code"] == "session_revoked"
        assert [event async for event in events] == []
