"""Session limits, local shells switched off, the detach timeout, and shutdown."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devpocket.errors import RateLimited
from devpocket.terminal.protocol import CloseCode
from devpocket.terminal.registry import SessionRegistry
from devpocket.terminal.session import SessionOwner
from tests.conftest import SettingsFactory
from tests.helpers import condition_holds, data
from tests.terminal.live import LiveServer, live_server, open_descriptors


@pytest.fixture
def terminal_options() -> dict[str, object]:
    return {"terminal_sessions_per_user_free": 2, "terminal_detach_timeout_seconds": 1}


async def test_a_user_beyond_the_plans_session_limit_gets_a_session_error(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.create_local()
        await term.create_local()
        await term.control(action="create_session", type="local")
        error = await term.action("session_error")
        assert error["data"]["code"] == "session_limit_reached"
    # Another user has sessions of their own to start.
    async with live.terminal(await live.account()) as other:
        await other.create_local()


async def test_a_burst_of_creates_cannot_pass_the_plans_session_limit(live: LiveServer) -> None:
    """Each open takes awaits: the limit must count the sessions still being opened."""
    account = await live.account()
    async with live.terminal(account) as term:
        for _ in range(6):
            await term.control(action="create_session", type="local")
        answers = [
            await term.until(
                lambda f: (
                    f["type"] == "control"
                    and f["data"]["action"] in {"session_created", "session_error"}
                )
            )
            for _ in range(6)
        ]
    created = [a for a in answers if a["data"]["action"] == "session_created"]
    refused = [a for a in answers if a["data"]["action"] == "session_error"]
    assert len(created) == 2
    assert {a["data"]["code"] for a in refused} == {"session_limit_reached"}
    assert len(live.app.state.ctx.terminals.sessions_of(uuid.UUID(account.user_id))) == 2


async def test_a_socket_gone_while_its_session_opens_leaves_a_session_not_a_stray_shell(
    live: LiveServer,
) -> None:
    """A phone losing signal just after asking: the shell opened is a session to reattach to."""
    account = await live.account()
    before = open_descriptors()["ptmx"]
    async with live.terminal(account) as term:
        await term.control(action="create_session", type="local")
    # The socket is closed at once, whatever stage the opening had reached.
    registry = live.app.state.ctx.terminals
    user_id = uuid.UUID(account.user_id)
    await condition_holds(lambda: bool(registry.sessions_of(user_id)))
    [session] = registry.sessions_of(user_id)
    await session.close("closed_by_user")
    await session.closed.wait()
    assert open_descriptors()["ptmx"] == before


async def test_a_detached_session_ends_after_the_timeout(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
    for _ in range(100):
        listed = data(await live.http.get("/api/v1/terminal/sessions", headers=account.headers))
        if listed["sessions"][0]["status"] == "ended":
            break
        await asyncio.sleep(0.1)
    [record] = listed["sessions"]
    assert (record["id"], record["status"], record["end_reason"]) == (
        session_id,
        "ended",
        "detach_timeout",
    )


async def test_an_attached_session_outlives_the_detach_timeout(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await asyncio.sleep(1.5)
        await term.run(session_id, "echo alive-$((2*3))")
        await term.output_contains(session_id, "alive-6")


@pytest.mark.parametrize("allow", [False])
async def test_local_shells_can_be_switched_off(
    settings_factory: SettingsFactory, allow: bool
) -> None:
    async with live_server(settings_factory(allow_local_shell=allow)) as live:
        account = await live.account()
        async with live.terminal(account) as term:
            await term.control(action="create_session", type="local")
            error = await term.action("session_error")
        response = await live.http.post(
            "/api/v1/terminal/sessions", json={"type": "local"}, headers=account.headers
        )
    assert error["data"]["code"] == "local_shell_disabled"
    assert response.status_code == 403
    assert response.json()["code"] == "local_shell_disabled"


async def test_the_server_limit_refuses_sessions_for_everyone(
    settings_factory: SettingsFactory,
) -> None:
    async with (
        live_server(settings_factory(terminal_shell="/bin/bash", terminal_sessions_max=1)) as live,
        live.terminal(await live.account()) as first,
    ):
        await first.create_local()
        async with live.terminal(await live.account()) as second:
            await second.control(action="create_session", type="local")
            error = await second.action("session_error")
    assert error["data"]["code"] == "session_limit_reached"


async def _read_until_closed(socket_: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(socket_.recv(), 10)


async def test_shutdown_closes_sockets_with_1001_and_ends_sessions(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(terminal_shell="/bin/bash")
    async with live_server(settings) as live:
        account = await live.account()
        url = f"{live.ws_url}?token={account.access_token}"
        async with connect(url) as socket_:
            await socket_.send(
                json.dumps(
                    {"type": "control", "data": {"action": "create_session", "type": "local"}}
                )
            )
            created = json.loads(await asyncio.wait_for(socket_.recv(), 10))
            assert created["data"]["action"] == "session_created"
            live.server.should_exit = True
            with pytest.raises(ConnectionClosed) as closed:
                await _read_until_closed(socket_)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.GOING_AWAY
    async with live_server(settings) as again:
        [record] = data(await again.http.get("/api/v1/terminal/sessions", headers=account.headers))[
            "sessions"
        ]
    assert (record["status"], record["end_reason"]) == ("ended", "server_shutdown")


class _Opened:
    """A process that finished opening; only whether it was ended matters here."""

    def __init__(self) -> None:
        self.terminated = False

    async def terminate(self) -> None:
        self.terminated = True


async def test_a_session_that_finishes_opening_during_shutdown_is_ended(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    async with anyio.create_task_group() as tasks:
        registry = SessionRegistry(settings_factory(), tasks, tmp_path)
        await registry.close_all("server_shutdown")
        opened = _Opened()
        owner = SessionOwner(uuid.uuid4(), None, "free")
        with pytest.raises(RateLimited) as refused:
            await registry.adopt(owner, "ssh", opened)  # type: ignore[arg-type]
    assert refused.value.code == "server_closing"
    assert opened.terminated
    assert len(registry) == 0
