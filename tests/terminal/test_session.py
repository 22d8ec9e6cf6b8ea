"""Command blocks of a live shell: announced in order, stored as history, marks passed on."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import SettingsFactory
from tests.helpers import data
from tests.openrouter import GOOD_KEY, serving_openrouter
from tests.terminal.live import LiveServer, Terminal, live_server

Frame = dict[str, object]


async def _finished(term: Terminal, count: int) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = []
    while len(blocks) < count:
        frame = await term.action("block_finished", timeout=10)
        block = frame["data"]["block"]
        assert isinstance(block, dict)
        blocks.append(block)
    return blocks


async def test_finished_commands_become_blocks_with_exit_codes_and_cwd(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local(cwd="/")
        for line in ("true", "false", "cd /tmp", "sh -c 'exit 3'", "echo 'a;b' \\\\ c"):
            await term.run(session_id, line)
        blocks = await _finished(term, 5)
        output = term.output[session_id]
    assert [(b["command"], b["exit_code"]) for b in blocks] == [
        ("true", 0),
        ("false", 1),
        ("cd /tmp", 0),
        ("sh -c 'exit 3'", 3),
        ("echo 'a;b' \\\\ c", 0),
    ]
    assert [b["cwd"] for b in blocks] == ["/", "/", "/", "/tmp", "/tmp"]
    last = blocks[-1]
    assert isinstance(last["output_start"], int)
    assert isinstance(last["output_end"], int)
    block_output = output.encode()[last["output_start"] : last["output_end"]].decode()
    assert block_output == "a;b \\ c\r\n"
    assert isinstance(last["duration_ms"], int)
    assert last["duration_ms"] >= 0
    # The marks reach the client untouched.
    assert "\x1b]133;C" in output
    assert "\x1b]133;D;3" in output


async def test_a_block_started_comes_before_its_output_and_finished_after(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        seen: list[str] = []
        command = "sleep 0.2; echo slow-$((1+1))"
        await term.run(session_id, command)
        while "finished" not in seen:
            frame = await term.recv()
            payload = frame["data"]
            if frame["type"] == "data" and "slow-2" in str(payload):
                seen.append("output")
            elif isinstance(payload, dict) and payload.get("block", {}).get("command") == command:
                seen.append(payload["action"].removeprefix("block_"))
    assert seen == ["started", "output", "finished"]


async def test_blocks_are_stored_as_the_sessions_command_history(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        for line in ("echo one", "false", "echo one"):
            await term.run(session_id, line)
        await _finished(term, 3)
    headers = account.headers
    path = f"/api/v1/terminal/sessions/{session_id}/history"
    for _ in range(50):
        history = data(await live.http.get(path, headers=headers))
        if len(history) == 3:
            break
        await asyncio.sleep(0.1)
    assert history == ["echo one", "false", "echo one"]
    stats = data(await live.http.get("/api/v1/terminal/stats", headers=headers))
    assert stats["total_commands"] == 3
    assert stats["top_commands"][0] == {"command": "echo one", "count": 2}
    assert stats["sessions_by_type"] == {"local": 1}
    # Other devices of the user learn of them through the sync feed.
    feed = data(await live.http.get("/api/v1/sync/changes?since=0", headers=headers))
    synced = [c["data"]["command"] for c in feed["changes"] if c["entity"] == "history"]
    assert synced == ["echo one", "false", "echo one"]


async def test_a_reattach_replays_the_block_announcements_after_since(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        since = term.next_seq[session_id]
        await term.run(session_id, "echo replayed")
        await _finished(term, 1)
    async with live.terminal(account) as again:
        await again.control(action="attach_session", session_id=session_id, since=since)
        again.next_seq[session_id] = since
        [block] = await _finished(again, 1)
    assert block["command"] == "echo replayed"


async def test_a_failed_block_is_explained_in_one_call(
    settings_factory: SettingsFactory,
) -> None:
    async with serving_openrouter() as fake:
        fake.default_completion(json.dumps({"cause": "No such file.", "fixes": []}))
        settings = settings_factory(terminal_shell="/bin/bash", openrouter_api_base_url=fake.url)
        async with live_server(settings) as live:
            account = await live.account()
            async with live.terminal(account) as term:
                session_id = await term.create_local()
                await term.run(session_id, "cat /no/such/file")
                [block] = await _finished(term, 1)
            headers = {**account.headers, "X-OpenRouter-Key": GOOD_KEY}
            path = f"/api/v1/ai/explain-block/{block['id']}"
            for _ in range(50):  # the block is stored by a writer of its own, just after
                response = await live.http.post(path, headers=headers)
                if response.status_code != 404:
                    break
                await asyncio.sleep(0.1)
            answer = data(response)
        [call] = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert answer["cause"] == "No such file."
    asked = json.dumps(call.json["messages"])
    assert "cat /no/such/file" in asked
    assert "No such file or directory" in asked
    assert block["exit_code"] == 1
