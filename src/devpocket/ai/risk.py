"""Risk labels for shell command lines, such as the commands the AI suggests.

A line is split the way a POSIX shell splits it (shlex with punctuation characters) into
pipelines of simple commands. Substitutions (`$(…)`, backticks, `<(…)`) and the strings that
`sh -c`, `eval`, `su -c`, `watch`, `ssh host …`, `find -exec` and `kubectl exec --` run are
classified as command lines of their own. Wrappers (sudo, env, nice, timeout, xargs …) are
peeled off so that the rule of the program they run applies; each program's knowledge is one
entry of `_RULES` (`risk_rules.py`), its rule written by subject (`risk_system.py`,
`risk_tools.py`). Parsing is `shell.py`.

Judgements worth knowing:
- rm: the target decides, -f only silences prompts. `/`, `~`, `.`, `..`, `*`, a top-level system
  directory or `$VAR/` (which is `/` when VAR is empty) is dangerous, and so is a recursive delete
  of any other absolute path outside /tmp; a recursive delete of a relative path (`./build`) is
  caution, because that is how build output is cleaned.
- git: losing local work (reset --hard, clean -f, checkout -- ., restore, branch -D, rebase) is
  caution; a force push is caution, dangerous when it hits main/master; filter-branch rewrites
  every commit and is dangerous.
- Writing to a disk device or a system file (redirect, tee, dd of=) is dangerous; a redirect
  that truncates any other file is caution. Installing or removing packages is caution.
- Losing data or access beyond the working tree is dangerous: Docker volumes, `system prune -a`,
  helm uninstall, kubectl delete of a namespace or `--all`, terraform destroy or apply
  -auto-approve, stopping sshd or the network, flushing the firewall, crontab -r.
- Here-document bodies are read as commands, which can only raise a label, never lower it.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devpocket.ai.risk_findings import Finding, Risk, _caution, _danger
from devpocket.ai.risk_rules import _RULES
from devpocket.ai.risk_system import _FIND_ACTIONS, _write_findings
from devpocket.ai.risk_tools import _SQL_CLIENTS, _SQL_SCRIPT, _inline_sql
from devpocket.ai.shell import (
    _SUBSTITUTION,
    _Command,
    _is_operator,
    _option_values,
    _options,
    _parse,
    _program,
    _subcommand,
    _unwrap,
    _Wrapper,
)

__all__ = ["Assessment", "Risk", "classify"]


@dataclass(frozen=True)
class Assessment:
    level: Risk
    reasons: tuple[str, ...]


_SEVERITY = {Risk.SAFE: 0, Risk.CAUTION: 1, Risk.DANGEROUS: 2}
# Substitutions and `sh -c` strings nest; past this depth a line is labelled, not unpicked.
_MAX_DEPTH = 8


def classify(command_line: str) -> Assessment:
    """Label a command line: the most severe part decides; reasons keep their first order."""
    findings = _assess(command_line, 0)
    level = max((lvl for lvl, _ in findings), key=_SEVERITY.__getitem__, default=Risk.SAFE)
    return Assessment(level, tuple(dict.fromkeys(reason for _, reason in findings)))


# Assessment ------------------------------------------------------------------------------------


def _assess(line: str, depth: int) -> list[Finding]:
    if depth > _MAX_DEPTH:
        return [_caution("nested too deeply to check")]
    try:
        pipelines, tokens, bodies = _parse(line)
    except ValueError:  # shlex's unclosed quotes and escapes, and _ParseError
        return [_caution("could not be parsed")]
    findings = [finding for body in bodies for finding in _assess(body, depth + 1)]
    if _is_fork_bomb(tokens):
        findings.append(_danger("fork bomb (exhausts the machine's processes)"))
    for pipeline in pipelines:
        findings += _assess_pipeline(pipeline, bodies, depth)
    return findings


def _assess_pipeline(
    pipeline: Sequence[_Command], bodies: Sequence[str], depth: int
) -> list[Finding]:
    findings: list[Finding] = []
    stages: list[_Command] = []
    for command in pipeline:
        argv, wrapper_findings = _unwrap(command.argv)
        findings += wrapper_findings
        for operator, target in command.redirects:
            if ">" in operator:
                findings += _write_findings(target, append=">>" in operator)
        findings += _command_findings(argv, bodies, depth)
        stages.append(_Command(argv, command.redirects))
    return findings + _pipe_findings(stages)


def _command_findings(argv: Sequence[str], bodies: Sequence[str], depth: int) -> list[Finding]:
    name, args = _program(argv), argv[1:]
    findings: list[Finding] = []
    if "--no-preserve-root" in args:
        findings.append(_danger("disables the safeguard for / (--no-preserve-root)"))
    if _runs_download(name, args, bodies):
        findings.append(_danger("runs a downloaded script"))
    rule = _RULES.get("mkfs" if name.startswith("mkfs.") else name)
    if rule is not None:
        findings += rule(args)
    for script in _NESTED.get(name, _no_scripts)(args):
        findings += _assess(script, depth + 1)
    return findings


def _pipe_findings(stages: Sequence[_Command]) -> list[Finding]:
    """What needs the whole pipeline: a download run by a shell, a dump fed to a database."""
    findings: list[Finding] = []
    for index, stage in enumerate(stages):
        name, args = _program(stage.argv), stage.argv[1:]
        upstream = {_program(earlier.argv) for earlier in stages[:index]}
        if upstream & _DOWNLOADERS and _is_interpreter(name) and _reads_stdin(name, args):
            findings.append(_danger("pipes a download into a shell"))
        fed = index > 0 or any("<" in operator for operator, _ in stage.redirects)
        if name in _SQL_CLIENTS and fed and not _inline_sql(name, args):
            findings.append(_SQL_SCRIPT)
    return findings


def _is_fork_bomb(tokens: Sequence[str]) -> bool:
    """A function that calls itself through a pipe or in the background: `:(){ :|:& };:`."""
    for index, name in enumerate(tokens[:-2]):
        if tokens[index + 1] != "()" or _is_operator(name):
            continue
        body = list(itertools.takewhile(lambda word: word != "}", tokens[index + 2 :]))
        if name in body and any(word in ("|", "&", "|&") for word in body):
            return True
    return False


# Interpreters and downloads --------------------------------------------------------------------

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "fish"})
_INTERPRETERS = _SHELLS | {"python", "perl", "ruby", "node", "php"}
_PYTHON = re.compile(r"python[\d.]*")
_DOWNLOADERS = frozenset({"curl", "wget", "fetch"})


def _is_interpreter(name: str) -> bool:
    return name in _INTERPRETERS or _PYTHON.fullmatch(name) is not None


def _reads_stdin(name: str, args: Sequence[str]) -> bool:
    """Whether an interpreter takes its program from standard input (no -c, no script file)."""
    inline = set("c" if name in _SHELLS else "cem")  # bash -e is errexit, perl -e is code
    for arg in args:
        if arg in ("-", "-s"):
            return True
        if not arg.startswith("-") or (not arg.startswith("--") and inline & set(arg[1:])):
            return False
    return True


def _runs_download(name: str, args: Sequence[str], bodies: Sequence[str]) -> bool:
    """`sh -c "$(curl …)"`, `bash <(wget …)`, `eval "$(curl …)"`: a shell runs a download."""
    if not (_is_interpreter(name) or name in ("eval", "source", ".")):
        return False
    indexes = {int(index) for arg in args for index in _SUBSTITUTION.findall(arg)}
    return any(_fetches(bodies[index]) for index in indexes if index < len(bodies))


def _fetches(line: str) -> bool:
    try:
        pipelines, _, _ = _parse(line)
    except ValueError:
        return False
    programs = {_program(_unwrap(command.argv)[0]) for p in pipelines for command in p}
    return bool(programs & _DOWNLOADERS)


# Commands that run commands --------------------------------------------------------------------


def _no_scripts(_args: Sequence[str]) -> list[str]:
    return []


def _shell_scripts(args: Sequence[str]) -> list[str]:
    """The string `sh -c` runs: the first operand once an option cluster holds c."""
    inline, rest = False, iter(args)
    for arg in rest:
        if arg in ("-o", "-O", "+o", "+O"):
            next(rest, None)
        elif arg.startswith("-") and not arg.startswith("--"):
            inline = inline or "c" in arg
        elif not arg.startswith(("-", "+")):
            return [arg] if inline else []
    return []


def _find_exec(args: Sequence[str]) -> list[str]:
    starts = [i + 1 for i, arg in enumerate(args) if arg in _FIND_ACTIONS]
    ends = (itertools.takewhile(lambda arg: arg not in (";", "+"), args[s:]) for s in starts)
    return [shlex.join(command) for command in ends]


def _ssh_command(args: Sequence[str]) -> list[str]:
    values = _options("-B -b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w")
    _host, command = _subcommand(args, values)
    return [" ".join(command)] if command else []  # ssh joins them for the remote shell


def _kubectl_exec(args: Sequence[str]) -> list[str]:
    if "exec" not in args or "--" not in args:
        return []
    return [shlex.join(args[list(args).index("--") + 1 :])]


_NESTED: dict[str, Callable[[Sequence[str]], list[str]]] = {
    **dict.fromkeys(_SHELLS, _shell_scripts),
    "eval": lambda args: [" ".join(args)],
    "su": lambda args: _option_values(args, "-c", "--command"),
    "watch": lambda args: [" ".join(_Wrapper(_options("-n --interval")).unwrap(args))],
    "find": _find_exec,
    "ssh": _ssh_command,
    "kubectl": _kubectl_exec,
}
