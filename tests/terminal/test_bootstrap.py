"""Sourcing the shell integration into an SSH session's shell: what is shown, typed and held."""

from __future__ import annotations

import asyncio

import pytest

from devpocket.terminal import remote
from devpocket.terminal.shell_integration import REMOTE_READY, REMOTE_SOURCE_LINE

QUIET = 0.05
WAIT = 5.0


@pytest.fixture(autouse=True)
def short_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "QUIET_SECONDS", QUIET)
    monkeypatch.setattr(remote, "BOOTSTRAP_SECONDS", 0.5)


class Shell:
    """What the bootstrap wrote to the shell and what it let through to the session."""

    def __init__(self) -> None:
        self.typed: list[bytes] = []
        self.shown: list[bytes] = []
        self.changed = asyncio.Event()
        self.bootstrap = remote.Bootstrap(self._type, self._show)

    def _type(self, data: bytes) -> None:
        self.typed.append(data)
        self.changed.set()

    def _show(self, data: bytes) -> None:
        self.shown.append(data)
        self.changed.set()

    async def until(self, items: list[bytes], count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(items) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_the_source_line_waits_for_quiet_and_the_echo_is_hidden_until_ready() -> None:
    shell = Shell()
    loop = asyncio.get_running_loop()
    shell.bootstrap.output(b"Last login: today\r\n")
    await asyncio.sleep(QUIET / 2)
    shell.bootstrap.output(b"user@host:~$ ")  # still talking: the quiet period starts again
    last_output = loop.time()
    await shell.until(shell.typed, 1)
    assert loop.time() - last_output >= QUIET * 0.9  # timers fire late, never early
    assert shell.typed == [REMOTE_SOURCE_LINE]
    shell.bootstrap.input(b"l")  # the user types meanwhile
    shell.bootstrap.output(b' . "$HOME/.cache/devpocket/shell-integration.sh"\r\n\x1b]6')
    shell.bootstrap.input(b"s\r")
    shell.bootstrap.output(REMOTE_READY[3:] + b"\r\x1b[K\x1b]133;A\x07user@host:~$ ")
    assert shell.bootstrap.done
    assert shell.shown == [
        b"Last login: today\r\n",
        b"user@host:~$ ",
        b"\r\x1b[K\x1b]133;A\x07user@host:~$ ",
    ]
    assert shell.typed == [REMOTE_SOURCE_LINE, b"l", b"s\r"]


async def test_a_shell_that_never_gets_ready_is_shown_as_it_came_after_the_wait() -> None:
    shell = Shell()
    shell.bootstrap.output(b"> ")
    await shell.until(shell.typed, 1)
    shell.bootstrap.output(b"unknown command: .\r\n> ")
    shell.bootstrap.input(b"help\r")
    assert shell.shown == [b"> "]
    await shell.until(shell.shown, 2)
    assert shell.bootstrap.done
    assert shell.shown == [b"> ", b"unknown command: .\r\n> "]
    assert shell.typed == [REMOTE_SOURCE_LINE, b"help\r"]
