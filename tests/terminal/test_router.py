"""``/api/v1/terminal``: session records over REST, in the envelope of the contract."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import data, error
from tests.terminal.live import LiveServer

SESSIONS = "/api/v1/terminal/sessions"


async def test_a_session_started_over_rest_is_attached_over_the_socket(live: LiveServer) -> None:
    account = await live.account()
    created = data(
        await live.http.post(
            SESSIONS,
            json={"type": "local", "shell": "bash", "env": {"HOME": str(live.home)}},
            headers=account.headers,
        )
    )
    assert created["type"] == "local"
    assert created["status"] == "active"
    assert created["shell"] == "/usr/bin/bash" or created["shell"].endswith("/bash")
    assert set(created) >= {"id", "type", "ssh_profile_id", "shell", "status", "created_at",
                            "last_activity"}  # fmt: skip
    session_id = created["id"]
    async with live.terminal(account) as term:
        await term.control(action="attach_session", session_id=session_id, since=0)
        term.next_seq[session_id] = 0
        await term.action("session_attached")
        await term.ready(session_id)
    listed = data(await live.http.get(SESSIONS, headers=account.headers))
    assert listed["total"] == 1
    [record] = listed["sessions"]
    assert record["id"] == session_id
    assert record["status"] == "active"
    assert record["output_offset"] > 0
    assert record["bytes_in"] > 0

    ended = data(await live.http.delete(f"{SESSIONS}/{session_id}", headers=account.headers))
    assert (ended["status"], ended["end_reason"]) == ("ended", "closed_by_user")
    # Deleting an ended session answers its record again.
    again = data(await live.http.delete(f"{SESSIONS}/{session_id}", headers=account.headers))
    assert again["status"] == "ended"


@pytest.mark.parametrize("method", ["delete", "history"])
async def test_unknown_or_foreign_sessions_are_404(live: LiveServer, method: str) -> None:
    owner, other = await live.account(), await live.account()
    created = data(await live.http.post(SESSIONS, json={"type": "local"}, headers=owner.headers))
    for session_id in (created["id"], str(uuid.uuid4())):
        if method == "delete":
            response = await live.http.delete(f"{SESSIONS}/{session_id}", headers=other.headers)
        else:
            response = await live.http.get(
                f"{SESSIONS}/{session_id}/history", headers=other.headers
            )
        error(response, 404, "session_not_found")


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"type": "ssh"}, 422), ({"type": "local", "cols": 5000}, 422)],
)
async def test_bad_session_requests_are_refused(
    live: LiveServer, body: dict[str, object], status: int
) -> None:
    account = await live.account()
    error(await live.http.post(SESSIONS, json=body, headers=account.headers), status)


async def test_the_terminal_api_needs_a_login(live: LiveServer) -> None:
    for path in (SESSIONS, "/api/v1/terminal/stats"):
        error(await live.http.get(path), 401)


async def test_stats_of_a_new_user_are_zero(live: LiveServer) -> None:
    account = await live.account()
    stats = data(await live.http.get("/api/v1/terminal/stats", headers=account.headers))
    assert stats == {
        "total_sessions": 0,
        "active_sessions": 0,
        "total_commands": 0,
        "total_usage_time": 0,
        "top_commands": [],
        "sessions_by_type": {},
    }
