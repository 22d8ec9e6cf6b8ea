"""Risk rules for the machine itself: files, disks, permissions, processes, services, firewall.

Also how writing to a path is judged (redirects, tee, dd of=), which the assessment of
redirections shares. Developer tools (git, containers, clusters, packages, databases) are in
`risk_tools.py`; the table mapping programs to these rules is `risk_rules.py`.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Sequence

from devpocket.ai.risk_builders import Rule, _always, _if_any, _unless_any
from devpocket.ai.risk_findings import Finding, Risk, _caution, _danger
from devpocket.ai.shell import _flags, _operands, _options

# Paths -----------------------------------------------------------------------------------------

_CRITICAL_DIRS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
)
_TOP_DIRS = frozenset((*_CRITICAL_DIRS, "/home", "/opt", "/root", "/srv", "/var"))
# Compared against, never opened: recursive deletes under it are routine.
_SCRATCH = "/tmp"  # noqa: S108  # nosec B108
_HOME = frozenset({"~", "$HOME", "${HOME}"})
_SCOPES = {"/": "/", ".": "the current directory", "..": "the parent directory"}
_EMPTY_VARIABLE_PATH = re.compile(r"\$\{?\w+\}?/\*?")
_HARMLESS_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero"})
_DISK = re.compile(r"/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|r?disk|md|dm-|mapper/|loop)")


def _normal(path: str) -> str:
    normal = posixpath.normpath(path)
    # normpath keeps a leading `//`, which means nothing special to Linux.
    return "/" + normal.lstrip("/") if path.startswith("/") else normal


def _is_system_path(path: str) -> bool:
    """/, a top-level system directory (or all of it: `/etc/*`), or a file the OS lives in."""
    if not path.startswith("/"):
        return False
    normal = _normal(path.removesuffix("*"))
    return normal in _TOP_DIRS or normal == "/" or normal.startswith(_CRITICAL_DIRS)


def _sweeping_scope(path: str) -> str | None:
    """What deleting path wipes wholesale (/, ~, ., *, a top-level directory), or None."""
    if not path:
        return None
    base = path.removesuffix("*").rstrip("/") or ("/" if path.startswith("/") else ".")
    if base in _HOME:
        return "the home directory"
    if _EMPTY_VARIABLE_PATH.fullmatch(path):
        return "/ whenever the variable is empty"
    normal = _normal(base)
    if normal in _TOP_DIRS:
        return normal
    return _SCOPES.get(normal) or (
        "a parent directory" if set(normal.split("/")) == {".."} else None
    )


def _write_findings(path: str, *, append: bool) -> list[Finding]:
    """What writing to path does (redirects, tee, dd of=)."""
    if path in _HARMLESS_DEVICES or path.startswith("/dev/fd/"):
        return []
    if _DISK.match(path):
        return [_danger("overwrites a disk device")]
    if path.startswith("/dev/"):
        return [_caution("writes to a device file")]
    if _is_system_path(path):
        return [_danger("appends to a system file" if append else "overwrites a system file")]
    return [] if append else [_caution("overwrites a file")]


# Files and disks -------------------------------------------------------------------------------


def _rm(args: Sequence[str]) -> list[Finding]:
    recursive = bool(_flags(args) & {"-r", "-R", "--recursive"})
    action = "deletes files recursively" if recursive else "deletes files"
    for target in _operands(args):
        scope = _sweeping_scope(target)
        if scope is not None:
            return [_danger(action), _danger(f"targets {scope}")]
        normal = _normal(target)
        scratch = normal == _SCRATCH or normal.startswith(_SCRATCH + "/")
        if recursive and target.startswith("/") and not scratch:
            return [_danger(action), _danger(f"targets {normal}")]
    return [_caution(action)]


def _ownership(what: str) -> Rule:
    def rule(args: Sequence[str]) -> list[Finding]:
        recursive = bool(_flags(args) & {"-R", "--recursive"})
        system = [target for target in _operands(args)[1:] if _is_system_path(target)]
        if system and recursive:
            return [_danger(f"changes {what} recursively from {_normal(system[0])}")]
        if system:
            return [_caution(f"changes {what} of system files")]
        return [_caution(f"changes {what} recursively")] if recursive else []

    return rule


_WORLD_WRITABLE = re.compile(r"[0-7]{2,3}[2367]|(?:.*,)?[ugo]*[ao][ugoa]*[+=][rwxXst]*w.*")


_PERMISSIONS = _ownership("permissions")


def _chmod(args: Sequence[str]) -> list[Finding]:
    mode = (_operands(args) or [""])[0]
    loose = _WORLD_WRITABLE.fullmatch(mode) is not None
    return _PERMISSIONS(args) + ([_caution("makes files writable by everyone")] if loose else [])


def _dd(args: Sequence[str]) -> list[Finding]:
    writes = [
        f for arg in args if arg.startswith("of=") for f in _write_findings(arg[3:], append=False)
    ]
    return [_caution("copies raw data (dd)"), *writes]


def _tee(args: Sequence[str]) -> list[Finding]:
    append = bool(_flags(args) & {"-a", "--append"})
    return [f for path in _operands(args) for f in _write_findings(path, append=append)]


def _truncate(args: Sequence[str]) -> list[Finding]:
    paths = _operands(args, _options("-s --size -r --reference"))
    writes = [f for path in paths for f in _write_findings(path, append=False)]
    return [_caution("truncates files"), *(f for f in writes if f[0] is Risk.DANGEROUS)]


def _copy(args: Sequence[str]) -> list[Finding]:
    destination = (_operands(args) or [""])[-1]
    return [_danger("overwrites a disk device")] if _DISK.match(destination) else []


def _move(args: Sequence[str]) -> list[Finding]:
    if (_operands(args) or [""])[-1] == "/dev/null":
        return [_danger("moves files onto /dev/null (destroys them)")]
    return _copy(args)


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find(args: Sequence[str]) -> list[Finding]:
    """-delete or -exec rm; the -exec command itself is also classified on its own."""
    runs = {
        posixpath.basename(args[i + 1]) for i in range(len(args) - 1) if args[i] in _FIND_ACTIONS
    }
    if "-delete" not in args and not runs & {"rm", "shred", "unlink"}:
        return []
    roots = itertools.takewhile(lambda arg: not arg.startswith(("-", "(", "!")), args)
    if any(_is_system_path(root) or root in _HOME for root in roots):
        return [_danger("deletes the files it finds under a system or home directory")]
    return [_caution("deletes the files it finds")]


_PARTITIONS = _danger("rewrites the partition table")
_PARTITION_EDITOR = _caution("opens the partition editor")
_PARTED_WRITES = "mklabel mktable mkpart mkpartfs rm resizepart resize rescue name set toggle"
_SGDISK_WRITES = (
    "-Z --zap-all -z --zap -o --clear -n --new -d --delete -t --typecode -g --mbrtogpt "
    "-R --replicate -G --randomize-guids -c --change-name -l --load-backup -x --sort"
)


def _parted(args: Sequence[str]) -> list[Finding]:
    if _if_any(_PARTED_WRITES, _PARTITIONS)(args):
        return [_PARTITIONS]
    return _unless_any("-l --list print", _PARTITION_EDITOR)(args)


# Processes, services, the machine --------------------------------------------------------------

_POWER = _always(_danger("shuts down or reboots the machine"))
_REMOTE_ACCESS_UNITS = frozenset(
    {"ssh", "sshd", "networking", "NetworkManager", "systemd-networkd"}
)


def _systemctl_stop(args: Sequence[str]) -> list[Finding]:
    units = {unit.removesuffix(".service") for unit in _operands(args)}
    if units & _REMOTE_ACCESS_UNITS:
        return [_danger("stops what remote access depends on (ssh, network)")]
    return [_caution("stops or disables a service")]


def _kill(args: Sequence[str]) -> list[Finding]:
    rest = list(args)
    if rest[:1] in (["-l"], ["-L"]):
        return []
    if rest[:1] in (["-s"], ["-n"]):
        rest = rest[2:]
    elif rest and rest[0].startswith("-") and rest[0] != "--":
        rest = rest[1:]  # the signal
    if {"-1", "1"} & set(rest):
        return [_danger("kills every process (or init)")]
    return [_caution("kills processes")]


def _iptables(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    if flags & {"-F", "--flush", "-X", "--delete-chain"}:
        return [_danger("flushes firewall rules")]
    if flags & {"-P", "--policy"} and "DROP" in args:
        return [_danger("drops all traffic by default (can lock you out)")]
    changes = {"-A", "-I", "-D", "-R", "-N", "-P", "--append", "--insert", "--delete", "--policy"}
    return [_caution("changes firewall rules")] if flags & changes else []


def _crontab(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    if "-r" in flags:
        return [_danger("deletes all cron jobs")]
    return [] if "-l" in flags else [_caution("changes cron jobs")]
