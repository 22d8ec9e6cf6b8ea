"""``/ws/terminal``: who may connect, and how bad frames and floods are answered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from devpocket.terminal.protocol import CloseCode
from tests.conftest import SettingsFactory
from tests.helpers import Account, data
from tests.terminal.live import LiveServer, live_server


@pytest.fixture
def terminal_options() -> dict[str, object]:
    return {
        "terminal_auth_timeout_seconds": 0.5,
        "terminal_frames_per_second": 20,
        "terminal_max_frame_bytes": 4096,
        "cors_origins": ["https://app.devpocket.example"],
    }


async def _closed_with(socket_: object, code: CloseCode) -> dict[str, object]:
    """The error frame sent before the close, after checking the close code."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(socket_, ClientConnection)
    message = json.loads(await asyncio.wait_for(socket_.recv(), 5))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket_.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    assert message["type"] == "control"
    assert message["data"]["action"] == "error"
    result: dict[str, object] = message["data"]
    return result


async def test_a_local_shell_echoes_what_it_runs(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.run(session_id, "echo hello-$((6*7))")
        await term.output_contains(session_id, "hello-42")


async def test_a_bearer_header_authenticates(live: LiveServer) -> None:
    account = await live.account()
    async with connect(live.ws_url, additional_headers=account.headers) as socket_:
        await socket_.send(json.dumps({"type": "control", "data": {"action": "list_sessions"}}))
        frame = json.loads(await asyncio.wait_for(socket_.recv(), 5))
    assert frame["data"] == {"action": "sessions", "session_id": None, "sessions": []}


async def test_an_auth_frame_authenticates(live: LiveServer) -> None:
    account = await live.account()
    async with connect(live.ws_url) as socket_:
        await socket_.send(json.dumps({"type": "auth", "data": {"token": account.access_token}}))
        await socket_.send(json.dumps({"type": "control", "data": {"action": "list_sessions"}}))
        frame = json.loads(await asyncio.wait_for(socket_.recv(), 5))
    assert frame["data"]["action"] == "sessions"


async def test_no_auth_frame_in_time_closes_with_4408(live: LiveServer) -> None:
    async with connect(live.ws_url) as socket_:
        error = await _closed_with(socket_, CloseCode.AUTH_TIMEOUT)
    assert error["code"] == "auth_timeout"


@pytest.mark.parametrize(
    "first", [{"type": "data", "data": "ls"}, {"type": "auth", "data": {}}, "not json"]
)
async def test_a_first_frame_that_is_not_auth_closes_with_4401(
    live: LiveServer, first: object
) -> None:
    async with connect(live.ws_url) as socket_:
        await socket_.send(first if isinstance(first, str) else json.dumps(first))
        await _closed_with(socket_, CloseCode.UNAUTHENTICATED)


def _expired(account: Account, live: LiveServer) -> str:
    settings = live.app.state.settings
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    past = datetime.now(UTC) - timedelta(hours=1)
    claims.update(iat=past - timedelta(minutes=15), nbf=past - timedelta(minutes=15), exp=past)
    return jwt.encode(claims, settings.jwt_signing_secret(), algorithm=settings.jwt_algorithm)


@pytest.mark.parametrize(
    ("token", "code"),
    [("expired", "token_expired"), ("garbage", "token_invalid"), ("signed_out", "session_revoked")],
)
async def test_a_bad_token_closes_with_4401(live: LiveServer, token: str, code: str) -> None:
    account = await live.account()
    if token == "signed_out":
        data(await live.http.post("/api/v1/auth/logout", headers=account.headers))
    value = {
        "expired": _expired(account, live),
        "garbage": "not.a.token",
        "signed_out": account.access_token,
    }[token]
    async with connect(f"{live.ws_url}?token={value}") as socket_:
        error = await _closed_with(socket_, CloseCode.UNAUTHENTICATED)
    assert error["code"] == code


async def test_signing_out_closes_the_open_socket(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.control(action="list_sessions")
        await term.action("sessions")
        data(await live.http.post("/api/v1/auth/logout", headers=account.headers))
        error = await _closed_with(term.socket, CloseCode.UNAUTHENTICATED)
    assert error["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.devpocket.example", True),
        ("https://evil.example", False),
        (None, True),
    ],
)
async def test_browser_origins_are_checked(
    live: LiveServer, origin: str | None, allowed: bool
) -> None:
    account = await live.account()
    url = f"{live.ws_url}?token={account.access_token}"
    async with connect(url, origin=origin) as socket_:  # type: ignore[arg-type]
        if not allowed:
            error = await _closed_with(socket_, CloseCode.ORIGIN_NOT_ALLOWED)
            assert error["code"] == "origin_not_allowed"
            return
        await socket_.send(json.dumps({"type": "control", "data": {"action": "list_sessions"}}))
        frame = json.loads(await asyncio.wait_for(socket_.recv(), 5))
        assert frame["data"]["action"] == "sessions"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_frame"),
        ("[1, 2]", "malformed_frame"),
        (json.dumps({"type": "teleport", "data": 1}), "unknown_frame_type"),
        (json.dumps({"type": "data", "data": "ls", "sessionId": 5}), "malformed_frame"),
        (json.dumps({"type": "data", "data": "ls"}), "session_required"),
        (json.dumps({"type": "data", "data": "ls", "sessionId": "nope"}), "session_not_attached"),
        (json.dumps({"type": "control", "data": {"action": "dance"}}), "unknown_action"),
        (json.dumps({"type": "control", "data": 42}), "invalid_control"),
        (json.dumps({"type": "control", "data": {"action": "attach_session"}}), "session_required"),
        (
            json.dumps(
                {"type": "control", "data": {"action": "attach_session", "session_id": "x"}}
            ),
            "session_not_found",
        ),
        (json.dumps({"type": "data", "data": "x" * 5000}), "frame_too_large"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_survives(
    live: LiveServer, frame: str, code: str
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.socket.send(frame)
        error = await term.action("error")
        assert error["data"]["code"] == code
        assert error["data"]["error"]
        await term.control(action="list_sessions")
        await term.action("sessions")


async def test_a_bad_resize_gets_an_error(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.send("resize", {"cols": 0, "rows": "x"}, session_id)
        error = await term.action("error")
        assert error["data"]["code"] == "invalid_resize"


async def test_a_binary_frame_gets_an_error(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.socket.send(b"\x00\x01")
        error = await term.action("error")
        assert error["data"]["code"] == "malformed_frame"


async def test_a_flood_is_limited_then_closed_with_4429(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        term.checked = True
        for _ in range(200):
            await term.send("heartbeat", "ping")
        error = await term.action("error")
        assert error["data"]["code"] == "rate_limited"
        with pytest.raises(ConnectionClosed) as closed:
            await term.until(lambda frame: False, timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.FLOODING


async def test_with_rate_limits_off_a_burst_far_above_the_frame_budget_is_all_answered(
    settings_factory: SettingsFactory, terminal_options: dict[str, object]
) -> None:
    burst = 1500  # 75 seconds' worth at this module's 20 frames a second
    settings = settings_factory(
        terminal_shell="/bin/bash", rate_limit_enabled=False, **terminal_options
    )
    async with live_server(settings) as live, live.terminal(await live.account()) as term:

        async def flood() -> None:
            for _ in range(burst):
                await term.control(action="list_sessions")

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(flood())
            answers = [await term.until(lambda f: f["type"] == "control") for _ in range(burst)]
        assert [a["data"]["action"] for a in answers] == ["sessions"] * burst
        # Still checked for size, and still open.
        await term.send("data", "x" * 5000)
        error = await term.action("error")
        assert error["data"]["code"] == "frame_too_large"
        session_id = await term.create_local()
        await term.run(session_id, "echo still-$((6*7))")
        await term.output_contains(session_id, "still-42")


def _sample(text: str, series: str) -> float:
    """The value of one series (name and labels, as exposed) in a metrics page; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_sockets_sessions_and_bytes_are_in_the_metrics(live: LiveServer) -> None:
    socket_gauge = 'devpocket_websocket_connections{endpoint="terminal"}'
    sessions_gauge = 'devpocket_terminal_sessions{type="local"}'
    bytes_out = 'devpocket_terminal_bytes_total{direction="out"}'
    before = (await live.http.get("/metrics")).text
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        during = (await live.http.get("/metrics")).text
    assert _sample(during, socket_gauge) == _sample(before, socket_gauge) + 1
    assert _sample(during, sessions_gauge) == _sample(before, sessions_gauge) + 1
    assert _sample(during, bytes_out) > _sample(before, bytes_out)
