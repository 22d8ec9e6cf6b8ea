"""What a local shell starts with: which shell, where, with which environment.

The shell gets a clean environment, not the server's: the server's own environment holds its
database URL and secrets. Only the variables a login shell expects, and those the client asks for
(plain names, no dynamic-loader tricks), are passed on.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

from devpocket.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_REFUSED_PREFIXES = ("LD_", "DYLD_")
_REFUSED = frozenset({"DEVPOCKET_USER_ZDOTDIR", "ZDOTDIR", "BASH_ENV", "ENV", "PROMPT_COMMAND"})
MAX_ENV = 64
MAX_VALUE = 4096


@dataclass(frozen=True, slots=True)
class LocalSpec:
    program: str | None = None  # the login shell asked for
    cwd: str | None = None
    cols: int = 80
    rows: int = 24
    env: dict[str, str] = field(default_factory=dict)


def known_shells() -> set[str]:
    try:
        lines = Path("/etc/shells").read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return {line.strip() for line in lines if line.strip().startswith("/")}


def choose_shell(requested: str | None, configured: str | None) -> str:
    """The requested shell when it is a login shell of this system; else the configured one."""
    if requested:
        shells = known_shells()
        candidates = (
            [requested]
            if requested.startswith("/")
            else [shell for shell in sorted(shells) if Path(shell).name == requested]
        )
        for candidate in candidates:
            if candidate in shells and os.access(candidate, os.X_OK):
                return candidate
        raise InvalidInput(
            f"The shell {requested!r} is not a login shell on this server.", code="shell_unknown"
        )
    return configured or os.environ.get("SHELL") or "/bin/bash"


def choose_cwd(requested: str | None, home: Path) -> Path:
    if requested is None:
        return home if home.is_dir() else Path("/")
    path = Path(requested).expanduser() if requested.startswith("~") else Path(requested)
    if not path.is_absolute() or not path.is_dir():
        raise InvalidInput(
            f"The directory {requested!r} does not exist on this server.", code="cwd_not_found"
        )
    return path


def check_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV:
        raise InvalidInput(f"At most {MAX_ENV} environment variables.", code="invalid_env")
    for name, value in env.items():
        if (
            not _NAME.match(name)
            or name.startswith(_REFUSED_PREFIXES)
            or name in _REFUSED
            or not isinstance(value, str)
            or "\x00" in value
            or len(value) > MAX_VALUE
        ):
            raise InvalidInput(
                f"The environment variable {name!r} is not allowed.", code="invalid_env"
            )
    return env


def base_environment(shell: str) -> dict[str, str]:
    account = pwd.getpwuid(os.getuid())
    env = {
        "HOME": os.environ.get("HOME", account.pw_dir),
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "SHELL": shell,
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "TERM_PROGRAM": "DevPocket",
    }
    if "LC_ALL" in os.environ:
        env["LC_ALL"] = os.environ["LC_ALL"]
    return env
