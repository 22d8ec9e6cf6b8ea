"""Shell integration against the real bash and zsh, each in a PTY of its own.

Each test starts a login shell the way the server does (``shell_launch``) with a HOME of its own,
types into the PTY, and reads the output through ``MarkScanner`` and ``BlockTracker``. The shell
starts through util-linux ``setsid --ctty``, as in production, so that the PTY is its
controlling terminal and Ctrl-C reaches the foreground job.
"""

from __future__ import annotations

import codecs
import os
import select
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devpocket.terminal.blocks import Block, BlockEvent, BlockTracker
from devpocket.terminal.marks import Mark, MarkScanner
from devpocket.terminal.shell_integration import (
    ShellLaunch,
    shell_launch,
    write_integration_files,
)
from tests.conftest import REQUIRE_SERVICES

TIMEOUT = 5.0


def program(name: str) -> str:
    """The absolute path of ``name``; skipped (locally) or failed (CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; install it to run this test"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return path


class Shell:
    """A shell in a PTY, its output so far, and the marks and blocks found in it."""

    def __init__(self, launch: ShellLaunch, home: Path) -> None:
        env = {
            "HOME": str(home),
            "TERM": "xterm-256color",
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            **launch.env,
        }
        self.master, slave = os.openpty()
        # A signal ignored here stays ignored in the shell's jobs, and pytest started in the
        # background of a script ignores SIGINT: Ctrl-C would then stop nothing. A handler is
        # reset to the default at exec.
        handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.process = subprocess.Popen(
                [program("setsid"), "--ctty", *launch.argv],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=home,
            )
        finally:
            signal.signal(signal.SIGINT, handler)
            os.close(slave)
        self.output = bytearray()
        self.marks: list[Mark] = []
        self.events: list[BlockEvent] = []
        self._scanner = MarkScanner()
        self._tracker = BlockTracker()
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._decoded = 0  # bytes of output decoded so far: the stream offset of the next text

    def close(self) -> None:
        # setsid made the shell the leader of its own session and process group.
        os.killpg(self.process.pid, signal.SIGKILL)
        os.close(self.master)
        self.process.wait(TIMEOUT)

    def read_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; output so far: {bytes(self.output[-3000:])!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                self._read()

    def _read(self) -> None:
        try:
            raw = os.read(self.master, 65536)
        except OSError as exc:  # EIO: the shell is gone
            raise AssertionError(f"the shell ended: {bytes(self.output[-3000:])!r}") from exc
        self.output += raw
        text = self._decoder.decode(raw)
        marks = self._scanner.feed(text, self._decoded)
        self._decoded += len(text.encode("utf-8", "surrogateescape"))
        self.marks += marks
        self.events += self._tracker.apply(marks)

    def prompts(self) -> int:
        return sum(mark.kind == "command_start" for mark in self.marks)

    def wait_for_prompt(self, count: int = 1) -> None:
        self.read_until(lambda: self.prompts() >= count)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def run(self, line: str) -> list[Block]:
        """Type ``line`` and Enter at the prompt; the blocks that finished until the next one."""
        prompts, seen = self.prompts(), len(self.events)
        self.send(line.replace("\n", "\r") + "\r")
        self.read_until(lambda: self.prompts() > prompts)
        return [event.block for event in self.events[seen:] if event.kind == "block_finished"]

    def run_one(self, line: str) -> Block:
        blocks = self.run(line)
        assert len(blocks) == 1, blocks
        return blocks[0]

    def prompt_marks(self) -> list[str]:
        """The kinds of the prompt marks in order: one A and one B per prompt when wrapped once."""
        kinds = {"prompt_start": "A", "command_start": "B"}
        return [kinds[mark.kind] for mark in self.marks if mark.kind in kinds]

    def output_of(self, block: Block) -> str:
        """The lines ``block`` printed. zsh draws its PROMPT_SP mark before the precmd hooks
        run, so its blocks also hold that mark after their last line: it is left out here."""
        text = self.output[block.output_start : block.output_end].decode()
        return text.rpartition("\r\n")[0]


@pytest.fixture(scope="session")
def integration_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("server") / "shell-integration"
    write_integration_files(directory)
    return directory


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def start(integration_dir: Path, home: Path) -> Iterator[Callable[..., Shell]]:
    """Starts a shell by name, ready at its first prompt; every shell is killed at teardown."""
    shells: list[Shell] = []

    def start_shell(name: str, user_zdotdir: str | None = None) -> Shell:
        launch = shell_launch(program(name), integration_dir, user_zdotdir=user_zdotdir)
        assert launch.marks
        shell = Shell(launch, home)
        shells.append(shell)
        shell.wait_for_prompt()
        return shell

    yield start_shell
    for shell in shells:
        shell.close()


SHELLS = pytest.mark.parametrize("name", ["bash", "zsh"])


@SHELLS
@pytest.mark.parametrize(("line", "exit_code"), [("true", 0), ("false", 1), ('sh -c "exit 3"', 3)])
def test_block_reports_command_and_exit_status(
    start: Callable[..., Shell], name: str, line: str, exit_code: int
) -> None:
    shell = start(name)

    block = shell.run_one(line)

    assert (block.command, block.exit_code) == (line, exit_code)
    assert block.finished


@SHELLS
def test_block_output_offsets_frame_the_command_output(
    start: Callable[..., Shell], name: str
) -> None:
    shell = start(name)

    block = shell.run_one("echo héllo-😀-done")

    assert shell.output_of(block) == "héllo-😀-done"


@SHELLS
@pytest.mark.parametrize(
    "directory",
    ["/tmp", "{home}/a dir;with\\backslash"],
)
def test_block_cwd_follows_cd(
    start: Callable[..., Shell], name: str, home: Path, directory: str
) -> None:
    target = directory.format(home=home)
    Path(target).mkdir(exist_ok=True)
    shell = start(name)

    cd = shell.run_one(f"cd '{target}'")
    pwd = shell.run_one("pwd")

    assert cd.cwd == str(home)
    assert pwd.cwd == target
    assert shell.output_of(pwd) == target


@SHELLS
@pytest.mark.parametrize(
    "line",
    [
        """printf '%s|' 'semi;colon' "back\\\\slash" "it's" \\; end""",
        "echo \"two\nlines\" && echo '\\x3b'",
    ],
)
def test_command_line_comes_back_exactly(start: Callable[..., Shell], name: str, line: str) -> None:
    shell = start(name)

    block = shell.run_one(line)

    assert block.command == line
    assert block.exit_code == 0


@SHELLS
def test_empty_enter_gives_no_block(start: Callable[..., Shell], name: str) -> None:
    shell = start(name)
    shell.run_one("false")

    assert shell.run("") == []
    assert shell.run("   ") == []
    assert shell.run_one("true").command == "true"
    assert [event.kind for event in shell.events].count("block_started") == 2
    assert shell.prompt_marks() == ["A", "B"] * 5


@SHELLS
def test_ctrl_c_ends_the_running_command_with_130(start: Callable[..., Shell], name: str) -> None:
    shell = start(name)
    prompts = shell.prompts()

    # The job prints only once it runs in the foreground, so the Ctrl-C reaches it.
    shell.send("sh -c 'echo ready; exec sleep 30'\r")
    shell.read_until(lambda: b"ready\r\n" in shell.output)
    shell.send("\x03")
    shell.read_until(lambda: shell.prompts() > prompts)

    blocks = [event.block for event in shell.events if event.kind == "block_finished"]
    assert [block.exit_code for block in blocks] == [130]


@pytest.mark.parametrize("via_profile", [True, False], ids=["profile", "bashrc"])
@pytest.mark.parametrize(
    "prompt_command",
    [
        """PROMPT_COMMAND='prompts=$((prompts+1)); PS1="user[$prompts]\\$ "'""",
        """PROMPT_COMMAND=('prompts=$((prompts+1))' 'PS1="user[$prompts]\\$ "')""",
    ],
    ids=["string", "array"],
)
def test_bash_runs_the_user_startup_files_and_prompt_command(
    start: Callable[..., Shell], home: Path, via_profile: bool, prompt_command: str
) -> None:
    (home / ".bashrc").write_text(f"greeting=from-bashrc\n{prompt_command}\n")
    if via_profile:
        (home / ".profile").write_text('. "$HOME/.bashrc"\n')
    shell = start("bash")
    shell.run_one("true")

    block = shell.run_one('echo "$greeting $prompts"')

    assert shell.output_of(block) == "from-bashrc 2"
    assert "user[3]$ " in shell.output.decode()
    # The user's code rewrites PS1 at each prompt; it is wrapped again, once.
    assert shell.prompt_marks() == ["A", "B"] * 3


def test_bash_keeps_the_user_debug_trap(start: Callable[..., Shell], home: Path) -> None:
    (home / ".bashrc").write_text("trap 'traced=$((traced+1))' DEBUG\n")
    shell = start("bash")

    block = shell.run_one('test "$traced" -gt 0 && echo traced')

    assert shell.output_of(block) == "traced"
    assert block.command == 'test "$traced" -gt 0 && echo traced'
    assert block.exit_code == 0


def test_bash_without_history_reports_the_command(start: Callable[..., Shell], home: Path) -> None:
    (home / ".bashrc").write_text("set +o history\n")
    shell = start("bash")

    assert shell.run_one("echo one").command == "echo one"
    assert shell.run_one("true").command == "true"


def zsh_startup_files(directory: str) -> dict[str, str]:
    """The user's four zsh startup files in ``directory``, each noting that it ran."""
    return {
        f"{directory}/.{name}": f"order+=({name})\n"
        for name in ("zshenv", "zprofile", "zshrc", "zlogin")
    } | {f"{directory}/.zshrc": "order+=(zshrc)\ngreeting=from-zshrc\n"}


@pytest.mark.parametrize(
    ("files", "user_zdotdir", "expected"),
    [
        (zsh_startup_files("."), None, ""),
        (zsh_startup_files("zdot"), "zdot", "zdot"),
        (
            zsh_startup_files("conf") | {"./.zshenv": "order+=(zshenv)\nZDOTDIR=$HOME/conf\n"},
            None,
            "conf",
        ),
    ],
    ids=["home", "zdotdir", "zdotdir-set-in-zshenv"],
)
def test_zsh_runs_the_user_startup_files_and_gives_back_zdotdir(
    start: Callable[..., Shell],
    home: Path,
    files: dict[str, str],
    user_zdotdir: str | None,
    expected: str,
) -> None:
    for relative, text in files.items():
        (home / relative).parent.mkdir(exist_ok=True)
        (home / relative).write_text(text)
    given = None if user_zdotdir is None else str(home / user_zdotdir)
    shell = start("zsh", given)

    block = shell.run_one('echo "${(j:,:)order} $greeting [$ZDOTDIR][${+DEVPOCKET_USER_ZDOTDIR}]"')

    zdotdir = str(home / expected) if expected else ""
    assert shell.output_of(block) == f"zshenv,zprofile,zshrc,zlogin from-zshrc [{zdotdir}][0]"
    assert block.exit_code == 0


@pytest.mark.parametrize("shell", ["/bin/sh", "/usr/bin/dash", "/usr/bin/fish", "/bin/ksh"])
def test_other_shells_start_as_plain_login_shells(integration_dir: Path, shell: str) -> None:
    assert shell_launch(shell, integration_dir) == ShellLaunch([shell, "-l"], {}, marks=False)


def test_zsh_is_told_the_user_zdotdir_only_when_there_is_one(integration_dir: Path) -> None:
    plain = shell_launch("/bin/zsh", integration_dir)
    moved = shell_launch("/bin/zsh", integration_dir, user_zdotdir="/home/me/.config/zsh")

    assert plain.env == {"ZDOTDIR": str(integration_dir / "zsh")}
    assert moved.env == {
        "ZDOTDIR": str(integration_dir / "zsh"),
        "DEVPOCKET_USER_ZDOTDIR": "/home/me/.config/zsh",
    }
    assert plain.argv == ["/bin/zsh", "-l", "-i"]


def test_integration_files_are_private_and_rewritten_when_changed(tmp_path: Path) -> None:
    directory = tmp_path / "integration"
    write_integration_files(directory)
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    contents = {path: path.read_bytes() for path in files}
    files[0].write_text("tampered")
    files[1].chmod(0o644)

    write_integration_files(directory)

    assert [path.relative_to(directory).as_posix() for path in files] == [
        "bash/devpocket.bash",
        "zsh/.zlogin",
        "zsh/.zprofile",
        "zsh/.zshenv",
        "zsh/.zshrc",
    ]
    assert {path: path.read_bytes() for path in files} == contents
    assert sorted(directory.rglob("*")) == sorted([*files, directory / "bash", directory / "zsh"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o600}


def test_integration_files_create_a_missing_data_dir_for_the_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_integration_files(data_dir / "shell-integration")
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
