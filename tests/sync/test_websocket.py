"""``/ws/sync``: a device connected to one server process hears within a second of a change
pushed through another (Redis), or through the same one (in-process broker)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devpocket.settings import Settings
from devpocket.terminal.protocol import CloseCode
from tests.conftest import SettingsFactory, serving
from tests.helpers import register
from tests.sync.devices import Device, login_device
from tests.terminal.live import LiveServer, live_server

NOTICE_WITHIN = 1.0


def _token(device: Device) -> str:
    return device.headers["Authorization"].removeprefix("Bearer ")


async def _frame(socket_: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket_.recv(), timeout))
    return frame


def _url(live: LiveServer, device: Device, *, own: bool = True) -> str:
    url = f"ws://127.0.0.1:{live.port}/ws/sync?token={_token(device)}"
    return f"{url}&device_id={device.device_id}" if own else url


def _new_profile(device: Device) -> None:
    name = f"host-{uuid.uuid4().hex[:6]}"
    device.edit(
        "ssh_profile", str(uuid.uuid4()), 1, name=name, host=f"{name}.example.com", username="u"
    )


async def _notices_reach(pusher: httpx.AsyncClient, live: LiveServer) -> None:
    account = await register(pusher)
    phone = await login_device(pusher, account, "phone")
    laptop = await login_device(live.http, account, "laptop")
    async with connect(_url(live, laptop)) as socket_:
        hello = await _frame(socket_)
        assert (hello["type"], hello["data"]) == ("sync", {"cursor": 0, "device_id": None})
        assert hello["timestamp"].endswith("Z")
        for expected in (1, 2):
            _new_profile(phone)
            started = time.monotonic()
            await phone.push()
            frame = await _frame(socket_, NOTICE_WITHIN)
            assert time.monotonic() - started < NOTICE_WITHIN
            assert frame["type"] == "sync"
            assert frame["data"] == {"cursor": expected, "device_id": phone.device_id}
        # The laptop's own change is not announced to it; the next one of the phone is.
        laptop.client = pusher
        _new_profile(laptop)
        await laptop.push()
        _new_profile(phone)
        await phone.push()
        assert (await _frame(socket_, NOTICE_WITHIN))["data"]["cursor"] == 4


async def test_a_push_on_one_server_reaches_a_socket_on_another(
    settings_factory: SettingsFactory, redis_server_url: str, redis_prefix: str
) -> None:
    settings = settings_factory(redis_url=redis_server_url, redis_key_prefix=redis_prefix)
    async with serving(settings) as (_, one), live_server(settings) as two:
        await _notices_reach(one, two)


async def test_a_push_reaches_a_socket_of_the_same_server_without_redis(
    settings_factory: SettingsFactory,
) -> None:
    async with live_server(settings_factory(redis_url=None)) as live:
        assert live.app.state.ctx.broker.name == "memory"
        await _notices_reach(live.http, live)


@pytest.fixture
async def live(settings_factory: SettingsFactory) -> Any:
    settings: Settings = settings_factory(
        terminal_auth_timeout_seconds=0.5,
        terminal_heartbeat_seconds=0.2,
        cors_origins=["https://app.devpocket.example"],
    )
    async with live_server(settings) as server:
        yield server


async def _closed_with(socket_: ClientConnection, code: CloseCode) -> str:
    error = await _frame(socket_)
    with pytest.raises(ConnectionClosed) as closed:
        await _frame(socket_)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    reason: str = error["data"]["code"]
    return reason


async def test_refusals_heartbeats_and_sign_out_use_the_terminals_codes(live: LiveServer) -> None:
    base = f"ws://127.0.0.1:{live.port}/ws/sync"
    async with connect(f"{base}?token=not-a-token") as socket_:
        assert await _closed_with(socket_, CloseCode.UNAUTHENTICATED) == "token_invalid"
    async with connect(base) as socket_:
        assert await _closed_with(socket_, CloseCode.AUTH_TIMEOUT) == "auth_timeout"
    async with connect(base, origin="https://evil.example") as socket_:  # type: ignore[arg-type]
        assert await _closed_with(socket_, CloseCode.ORIGIN_NOT_ALLOWED) == "origin_not_allowed"
    # An auth frame is accepted too; heartbeats follow; signing out closes the socket.
    account = await register(live.http)
    async with connect(base) as socket_:
        await socket_.send(json.dumps({"type": "auth", "data": {"token": account.access_token}}))
        assert (await _frame(socket_))["type"] == "sync"
        assert (await _frame(socket_))["data"] == "ping"
        await live.http.post("/api/v1/auth/logout", headers=account.headers)
        assert await _closed_with(socket_, CloseCode.UNAUTHENTICATED) == "session_revoked"
