"""Sessions outlive sockets: reattaching, several sockets, exact output, bounded memory."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.helpers import condition_holds
from tests.terminal.live import LiveServer

COUNTING = "for i in $(seq 1 300); do echo line-$i; sleep 0.002; done; echo count-$((0))-done"


@pytest.fixture
def terminal_options() -> dict[str, object]:
    return {"terminal_buffer_bytes": 256 * 1024}


async def test_a_dropped_socket_reattaches_elsewhere_without_loss_or_repeat(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as first:
        session_id = await first.create_local()
        await first.ready(session_id)
        await first.run(session_id, COUNTING)
        await first.output_contains(session_id, "line-50")
        seen, resume = first.output[session_id], first.next_seq[session_id]
    # The first socket is gone mid-stream; the session goes on without it.
    async with live.terminal(account) as second:
        await second.control(action="attach_session", session_id=session_id, since=resume)
        second.next_seq[session_id] = resume
        attached = await second.action("session_attached")
        assert attached["data"]["seq"] == resume
        assert attached["data"]["lost"] == 0
        rest = await second.output_contains(session_id, "count-0-done\r\n")
    async with live.terminal(account) as third:
        await third.control(action="attach_session", session_id=session_id, since=0)
        third.next_seq[session_id] = 0
        whole = await third.output_contains(session_id, "count-0-done\r\n")
    assert seen + rest == whole[: len(seen + rest)]
    assert [f"line-{i}\r\n" in whole for i in (1, 150, 300)] == [True] * 3
    assert whole.count("line-150\r\n") == 1


async def test_two_sockets_on_one_session_see_the_same_output_and_both_type(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as phone, live.terminal(account) as tablet:
        session_id = await phone.create_local()
        await tablet.control(action="attach_session", session_id=session_id, since=0)
        tablet.next_seq[session_id] = 0
        await tablet.action("session_attached")
        await phone.run(session_id, "echo from-$((1+1))-phone")
        await tablet.output_contains(session_id, "from-2-phone")
        await tablet.run(session_id, "echo from-$((2+1))-tablet")
        await phone.output_contains(session_id, "from-3-tablet")
        await tablet.output_contains(session_id, "from-3-tablet")
        await phone.control(action="list_sessions")
        listed = (await phone.action("sessions"))["data"]["sessions"]
        assert [(s["session_id"], s["attached"]) for s in listed] == [(session_id, 2)]
    common = min(len(phone.output[session_id]), len(tablet.output[session_id]))
    assert phone.output[session_id][:common] == tablet.output[session_id][:common]


async def test_a_large_multibyte_stream_arrives_identical(live: LiveServer, tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = "abcxyz0123 é ü ß 漢字 カナ 😀 🚀 ∑ ∫ ‽"
    text = "".join(rng.choice(alphabet) for _ in range(1_200_000))  # ~2.5 MB of UTF-8
    source = tmp_path / "text.txt"
    source.write_text(text, encoding="utf-8")
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.run(session_id, f"cat {source}; echo; echo cat-$((0))-done")
        output = await term.output_contains(session_id, "cat-0-done\r\n", timeout=60)
    assert text in output


async def test_a_slow_reader_holds_the_program_with_bounded_server_memory(
    live: LiveServer,
) -> None:
    account = await live.account()
    total = 20_000_000  # far more than the kernel buffers between client and server
    async with live.terminal(account, receive_buffer=64 * 1024) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        term.socket.transport.pause_reading()  # the client reads nothing for a while
        command = f"head -c {total} /dev/zero | tr '\\000' '\\132'; echo; echo zz-$((0))-done"
        await term.run(session_id, command)
        await asyncio.sleep(1.5)
        session = live.app.state.ctx.terminals.get(session_id)
        produced = session.stream.end
        assert session.paused, "reading stops while every client is behind"
        assert session.stream.kept <= 256 * 1024 * 5 // 4
        await asyncio.sleep(0.5)
        assert session.stream.end == produced, "the program is blocked"
        assert produced < total
        term.socket.transport.resume_reading()
        output = await term.output_contains(session_id, "zz-0-done\r\n", timeout=60)
    assert output.count("Z") == total


async def test_a_socket_attaching_at_the_end_resumes_a_session_its_laggard_paused(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account, receive_buffer=64 * 1024) as slow:
        session_id = await slow.create_local()
        await slow.ready(session_id)
        slow.socket.transport.pause_reading()
        await slow.run(session_id, "head -c 20000000 /dev/zero | tr '\\000' '\\132'")
        session = live.app.state.ctx.terminals.get(session_id)
        await condition_holds(lambda: session.paused)
        async with live.terminal(account) as fresh:
            await fresh.control(
                action="attach_session", session_id=session_id, since=session.stream.end
            )
            attached = await fresh.action("session_attached")
            fresh.next_seq[session_id] = attached["data"]["seq"]
            # The program runs again: output reaches the socket that keeps up.
            await fresh.until(lambda f: f["type"] == "data", timeout=10)
            assert not session.paused
            await fresh.send("data", "\x03", session_id)
            await fresh.run(session_id, "echo resumed-$((2*21))")
            await fresh.output_contains(session_id, "resumed-42", timeout=30)
            # Closing while the laggard still holds it back ends cleanly for both sockets.
            await fresh.control(action="close_session", session_id=session_id)
            closed = await fresh.action("session_closed", timeout=10)
    assert closed["data"]["reason"] == "closed_by_user"


async def test_output_beyond_the_buffer_is_reported_lost_and_the_rest_replayed(
    live: LiveServer,
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.run(
            session_id, "head -c 600000 /dev/zero | tr '\\000' '\\132'; echo; echo big-$((0))-done"
        )
        await term.output_contains(session_id, "big-0-done\r\n", timeout=30)
        end = term.next_seq[session_id]
    async with live.terminal(account) as late:
        await late.control(action="attach_session", session_id=session_id, since=0)
        attached = await late.action("session_attached")
        lost = attached["data"]["lost"]
        assert lost > 0
        assert attached["data"]["seq"] == lost
        notice = await late.action("output_lost")
        assert notice["data"]["lost"] == lost
        first = await late.until(lambda f: f["type"] == "data")
        assert first["seq"] == lost
        late.next_seq[session_id] = lost
        late.output[session_id] = first["data"]
        late.next_seq[session_id] = lost + len(first["data"].encode())
        await late.output_contains(session_id, "big-0-done\r\n")
        assert late.next_seq[session_id] >= end


async def test_another_users_session_is_not_found(live: LiveServer) -> None:
    owner, other = await live.account(), await live.account()
    async with live.terminal(owner) as term, live.terminal(other) as intruder:
        session_id = await term.create_local()
        for action in ("attach_session", "close_session"):
            await intruder.control(action=action, session_id=session_id, since=0)
            error = await intruder.action("error")
            assert error["data"]["code"] == "session_not_found"
        await intruder.send("data", "echo pwned\r", session_id)
        error = await intruder.action("error")
        assert error["data"]["code"] == "session_not_attached"
        await intruder.control(action="list_sessions")
        assert (await intruder.action("sessions"))["data"]["sessions"] == []


async def test_detaching_keeps_the_session_and_reattach_replays(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        await term.control(action="detach_session", session_id=session_id)
        await term.action("session_detached")
        resume = term.next_seq[session_id]
        await term.control(action="attach_session", session_id=session_id, since=resume)
        await term.action("session_attached")
        await term.run(session_id, "echo still-$((40+2))")
        await term.output_contains(session_id, "still-42")
