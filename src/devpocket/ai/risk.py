"""Risk labels for shell command lines, such as the commands the AI suggests.

A line is split the way a POSIX shell splits it (shlex with punctuation characters) into
pipelines of simple commands. Substitutions (`$(…)`, backticks, `<(…)`) and the strings that
`sh -c`, `eval`, `su -c`, `watch`, `ssh host …`, `find -exec` and `kubectl exec --` run are
classified as command lines of their own. Wrappers (sudo, env, nice, timeout, xargs …) are
peeled off so that the rule of the program they run applies; each program's knowledge is one
entry of `_RULES`.

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
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Risk(StrEnum):
    SAFE = "safe"
    CAUTION = "caution"
    DANGEROUS = "dangerous"


@dataclass(frozen=True)
class Assessment:
    level: Risk
    reasons: tuple[str, ...]


Finding = tuple[Risk, str]
Rule = Callable[[Sequence[str]], list[Finding]]

_SEVERITY = {Risk.SAFE: 0, Risk.CAUTION: 1, Risk.DANGEROUS: 2}
# Substitutions and `sh -c` strings nest; past this depth a line is labelled, not unpicked.
_MAX_DEPTH = 8
_OPERATOR_CHARS = frozenset("();<>|&")
# Quoted or escaped operator characters travel through shlex as these words, so that
# `echo ";"` stays one command; they are turned back into characters in each argument.
_ESCAPES = {char: f"__devpocket_op{ord(char)}__" for char in _OPERATOR_CHARS}
_UNESCAPES = {word: char for char, word in _ESCAPES.items()}
_ESCAPED = re.compile("|".join(_UNESCAPES))
_SUBSTITUTION = re.compile(r"__devpocket_sub(\d+)__")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*\+?=")
_RESERVED = frozenset({"!", "{", "}", "do", "then", "else", "elif", "if", "while", "until"})


def classify(command_line: str) -> Assessment:
    """Label a command line: the most severe part decides; reasons keep their first order."""
    findings = _assess(command_line, 0)
    level = max((lvl for lvl, _ in findings), key=_SEVERITY.__getitem__, default=Risk.SAFE)
    return Assessment(level, tuple(dict.fromkeys(reason for _, reason in findings)))


def _caution(reason: str) -> Finding:
    return (Risk.CAUTION, reason)


def _danger(reason: str) -> Finding:
    return (Risk.DANGEROUS, reason)


# Parsing ---------------------------------------------------------------------------------------


class _ParseError(ValueError):
    """An unclosed quote or substitution: a shell would wait for more input."""


@dataclass
class _Command:
    argv: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, target)


class _Preprocessor:
    """The pass over the raw line that shlex cannot do.

    Comments and line continuations go, unquoted newlines become `;`, quoted or escaped
    operator characters become placeholder words, and each `$(…)`, backtick or `<(…)`
    substitution is cut out, its body kept to be classified on its own.
    """

    def __init__(self, line: str) -> None:
        self.line = line
        self.pos = 0
        self.out: list[str] = []
        self.bodies: list[str] = []
        self.in_double = False

    def run(self) -> tuple[str, list[str]]:
        while self.pos < len(self.line):
            self._step(self.line[self.pos])
        return "".join(self.out), self.bodies

    def _step(self, char: str) -> None:
        if char == "\\":
            self._escape()
        elif char == "'" and not self.in_double:
            self._single_quoted()
        elif self._opens_substitution():
            self._substitution()
        elif char == "#" and not self.in_double and self._at_word_start():
            end = self.line.find("\n", self.pos)
            self.pos = len(self.line) if end < 0 else end
        elif char == "\n" and not self.in_double:
            self._emit(";", 1)
        else:
            self.in_double ^= char == '"'
            self._emit(_ESCAPES[char] if self.in_double and char in _ESCAPES else char, 1)

    def _emit(self, text: str, consumed: int) -> None:
        self.out.append(text)
        self.pos += consumed

    def _escape(self) -> None:
        escaped = self.line[self.pos + 1 : self.pos + 2]
        if escaped == "\n":
            self._emit("", 2)  # a line continuation
        else:
            self._emit(_ESCAPES.get(escaped, "\\" + escaped), 2)

    def _single_quoted(self) -> None:
        end = self.line.find("'", self.pos + 1)
        if end < 0:
            raise _ParseError("unclosed single quote")
        span = self.line[self.pos : end + 1]
        self._emit("".join(_ESCAPES.get(char, char) for char in span), len(span))

    def _opens_substitution(self) -> bool:
        ahead = self.line[self.pos : self.pos + 2]
        # Inside double quotes `<(` is text, while `$(` and backticks still run.
        return ahead == "$(" or ahead[:1] == "`" or (ahead in ("<(", ">(") and not self.in_double)

    def _substitution(self) -> None:
        backtick = self.line[self.pos] == "`"
        start = self.pos + (1 if backtick else 2)
        end = self.line.find("`", start) if backtick else _closing_paren(self.line, start)
        if end < 0:
            raise _ParseError("unclosed substitution")
        self.out.append(f"__devpocket_sub{len(self.bodies)}__")
        self.bodies.append(self.line[start:end])
        self.pos = end + 1

    def _at_word_start(self) -> bool:
        return self.pos == 0 or self.line[self.pos - 1] in " \t\n;&|()<>"


def _closing_paren(line: str, start: int) -> int:
    """Index of the `)` that closes a substitution whose body starts at start, or -1."""
    depth, pos, quote = 1, start, ""
    while pos < len(line):
        char = line[pos]
        if char == "\\" and quote != "'":
            pos += 1
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return pos
        pos += 1
    return -1


def _parse(line: str) -> tuple[list[list[_Command]], list[str], list[str]]:
    """Pipelines, raw tokens and substitution bodies; ValueError when the line is not shell."""
    text, bodies = _Preprocessor(line).run()
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # the preprocessor already dropped what a shell treats as comments
    tokens = list(lexer)
    return _pipelines(tokens), tokens, bodies


def _is_operator(token: str) -> bool:
    return bool(token) and set(token) <= _OPERATOR_CHARS


def _unescape(token: str) -> str:
    return _ESCAPED.sub(lambda match: _UNESCAPES[match.group()], token)


def _pipelines(tokens: Sequence[str]) -> list[list[_Command]]:
    """Group tokens into pipelines of simple commands, with redirections set aside."""
    pipelines: list[list[_Command]] = [[_Command()]]
    stream = iter(tokens)
    for token in stream:
        command = pipelines[-1][-1]
        if not _is_operator(token):
            command.argv.append(_unescape(token))
        elif "<" in token or ">" in token:
            target = _unescape(next(stream, ""))
            if not (token.endswith("&") and (target.isdigit() or target == "-")):
                command.redirects.append((token, target))  # `2>&1` duplicates, writes nothing
        elif token.strip("()") in ("|", "|&"):
            pipelines[-1].append(_Command())
        else:
            pipelines.append([_Command()])
    grouped = ([c for c in pipeline if c.argv or c.redirects] for pipeline in pipelines)
    return [pipeline for pipeline in grouped if pipeline]


def _is_fork_bomb(tokens: Sequence[str]) -> bool:
    """A function that calls itself through a pipe or in the background: `:(){ :|:& };:`."""
    for index, name in enumerate(tokens[:-2]):
        if tokens[index + 1] != "()" or _is_operator(name):
            continue
        body = list(itertools.takewhile(lambda word: word != "}", tokens[index + 2 :]))
        if name in body and any(word in ("|", "&", "|&") for word in body):
            return True
    return False


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


def _program(argv: Sequence[str]) -> str:
    return posixpath.basename(argv[0]) if argv else ""


def _unwrap(argv: Sequence[str]) -> tuple[list[str], list[Finding]]:
    """Strip assignments, keywords and wrappers (sudo, env, xargs …) down to what runs."""
    rest = list(argv)
    findings: list[Finding] = []
    while rest:
        wrapper = _WRAPPERS.get(_program(rest))
        if _ASSIGNMENT.match(rest[0]) or rest[0] in _RESERVED:
            rest = rest[1:]
        elif wrapper is None:
            break
        else:
            findings += wrapper.findings
            rest = wrapper.unwrap(rest[1:])
    return rest, findings


# Reading arguments -----------------------------------------------------------------------------


def _options(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


def _flags(args: Sequence[str]) -> set[str]:
    """Options as a program reads them: clusters split (-rf → -r -f), long ones without values."""
    found: set[str] = set()
    for arg in itertools.takewhile(lambda arg: arg != "--", args):
        if arg.startswith("--"):
            found.add(arg.partition("=")[0])
        elif arg.startswith("-"):
            found.update(f"-{char}" for char in arg[1:])
    return found


def _operands(args: Sequence[str], value_options: frozenset[str] = frozenset()) -> list[str]:
    """Arguments that are not options nor option values; everything after `--`."""
    found: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            found.extend(rest)
        elif arg in value_options:
            next(rest, None)
        elif not arg.startswith("-") or arg == "-":
            found.append(arg)
    return found


def _option_values(args: Sequence[str], short: str, long: str) -> list[str]:
    """Values given as `-c V`, `-cV`, `--command V` or `--command=V`."""
    values: list[str] = []
    for index, arg in enumerate(args):
        if arg in (short, long):
            values.extend(args[index + 1 : index + 2])
        elif arg.startswith(long + "="):
            values.append(arg.partition("=")[2])
        elif arg.startswith(short) and not arg.startswith("--"):
            values.append(arg[len(short) :])
    return values


def _subcommand(
    args: Sequence[str], value_options: frozenset[str] = frozenset()
) -> tuple[str, list[str]]:
    """The first operand (a subcommand, a host) and the arguments after it."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        if rest.pop(0) in value_options and rest:
            rest.pop(0)
    return (rest[0], rest[1:]) if rest else ("", [])


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


# Wrappers and commands that run commands -------------------------------------------------------


@dataclass(frozen=True)
class _Wrapper:
    """A program that runs its remaining arguments as a command (sudo, env, timeout …)."""

    value_options: frozenset[str] = frozenset()
    operands: int = 0  # operands before the command, such as timeout's duration
    findings: tuple[Finding, ...] = ()
    lookups: frozenset[str] = frozenset()  # options that only look the command up

    def unwrap(self, args: Sequence[str]) -> list[str]:
        rest = list(args)
        while rest and rest[0].startswith("-") and rest[0] != "-":
            option = rest.pop(0)
            if option in self.lookups:
                return []
            if option == "--":
                break
            if option in self.value_options and rest:
                rest.pop(0)
        return rest[self.operands :]


_SUDO_VALUES = "-u -g -C -D -h -p -r -t -U -T --user --group --chdir --prompt --role --type --host"
_WRAPPERS = {
    "sudo": _Wrapper(_options(_SUDO_VALUES), findings=(_caution("needs root (sudo)"),)),
    "doas": _Wrapper(_options("-u -C"), findings=(_caution("needs root (doas)"),)),
    "env": _Wrapper(_options("-u -C --unset --chdir")),
    "nice": _Wrapper(_options("-n --adjustment")),
    "ionice": _Wrapper(_options("-c -n --class --classdata")),
    "nohup": _Wrapper(),
    "time": _Wrapper(_options("-f -o --format --output")),
    "timeout": _Wrapper(_options("-s -k --signal --kill-after"), operands=1),
    "stdbuf": _Wrapper(_options("-i -o -e")),
    "xargs": _Wrapper(_options("-a -d -E -I -L -n -P -s --arg-file --delimiter --max-args")),
    "command": _Wrapper(lookups=_options("-v -V")),
    "builtin": _Wrapper(),
    "exec": _Wrapper(_options("-a")),
}
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


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


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


# Rule builders ---------------------------------------------------------------------------------


def _always(finding: Finding) -> Rule:
    return lambda _args: [finding]


def _if_any(words: str, finding: Finding) -> Rule:
    """Report finding when any of words is an argument or a (split) flag."""
    wanted = _options(words)
    return lambda args: [finding] if wanted & (set(args) | _flags(args)) else []


def _unless_any(words: str, finding: Finding) -> Rule:
    """Report finding unless one of words (a dry run, a read-only mode) is there."""
    wanted = _options(words)
    return lambda args: [] if wanted & (set(args) | _flags(args)) else [finding]


def _combine(*rules: Rule) -> Rule:
    return lambda args: [finding for rule in rules for finding in rule(args)]


def _each(names: str, rule: Rule) -> dict[str, Rule]:
    return dict.fromkeys(names.split(), rule)


def _dispatch(table: Mapping[str, Rule], value_options: str = "") -> Rule:
    """A rule for a program with subcommands (git push, docker volume rm …)."""
    options = _options(value_options)

    def rule(args: Sequence[str]) -> list[Finding]:
        verb, rest = _subcommand(args, options)
        verb_rule = table.get(verb)
        return verb_rule(rest) if verb_rule is not None else []

    return rule


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


# Git -------------------------------------------------------------------------------------------

_PROTECTED_BRANCHES = frozenset({"main", "master"})


def _git_push(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    refspecs = _operands(args, _options("-o --push-option --repo --receive-pack"))[1:]
    if "--mirror" in flags:
        return [_danger("mirrors over every remote branch")]
    destinations = {r.lstrip("+").split(":")[-1].removeprefix("refs/heads/") for r in refspecs}
    on_main = bool(destinations & _PROTECTED_BRANCHES)
    level = Risk.DANGEROUS if on_main else Risk.CAUTION
    forces = {"-f", "--force", "--force-with-lease", "--force-if-includes"}
    if flags & forces or any(r.startswith("+") for r in refspecs):
        where = "to main/master" if on_main else "(rewrites remote history)"
        return [(level, f"force-pushes {where}")]
    if flags & {"-d", "--delete"} or any(r.startswith(":") for r in refspecs):
        return [(level, "deletes a remote branch")]
    return []


def _git_clean(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    if flags & {"-n", "--dry-run"} or not flags & {"-f", "--force"}:
        return []
    ignored = bool(flags & {"-x", "-X"})
    return [
        _caution("deletes untracked and ignored files" if ignored else "deletes untracked files")
    ]


_DISCARDS = _caution("discards uncommitted changes")
_GIT: dict[str, Rule] = {
    "push": _git_push,
    "reset": _if_any("--hard", _caution("discards uncommitted changes (reset --hard)")),
    "clean": _git_clean,
    "checkout": _if_any("-- . -f --force", _DISCARDS),
    "restore": _unless_any("--staged -S", _DISCARDS),
    "switch": _if_any("-f --force --discard-changes", _DISCARDS),
    "stash": _if_any("drop clear", _caution("deletes stashed changes")),
    "branch": _if_any("-D", _caution("force-deletes a branch")),
    "rebase": _unless_any(
        "--abort --continue --skip --quit", _caution("rewrites git history (rebase)")
    ),
    "commit": _if_any("--amend", _caution("rewrites the last commit")),
    "rm": _unless_any("--cached", _caution("deletes tracked files")),
    **_each("filter-branch filter-repo", _always(_danger("rewrites git history"))),
}


# Containers, clusters, infrastructure ----------------------------------------------------------

_CLUSTER_STATE = _always(_caution("changes cluster state"))
_KUBECTL_VALUES = (
    "-n --namespace --context --kubeconfig --cluster --user -s --server --as -l --selector "
    "-o --output -f --filename -c --container --field-selector --grace-period --timeout"
)
_NAMESPACE_KINDS = frozenset({"ns", "namespace", "namespaces"})
_CLUSTER_KINDS = frozenset(
    {"node", "nodes", "no", "pv", "persistentvolume", "persistentvolumes", "crd", "crds"}
)


def _kubectl_delete(args: Sequence[str]) -> list[Finding]:
    operands = _operands(args, _options(_KUBECTL_VALUES))
    kinds = set(operands[0].split("/")[0].split(",")) if operands else set()
    if kinds & _NAMESPACE_KINDS:
        return [_danger("deletes a Kubernetes namespace")]
    if "all" in kinds or _flags(args) & {"--all", "-A", "--all-namespaces"}:
        return [_danger("deletes every resource of a kind (--all)")]
    if kinds & _CLUSTER_KINDS:
        return [_danger("deletes cluster-wide Kubernetes resources")]
    return [_caution("deletes Kubernetes resources")]


_KUBECTL = {
    "delete": _kubectl_delete,
    **_each(
        "apply create replace patch edit scale autoscale rollout set label annotate", _CLUSTER_STATE
    ),
    **_each("taint cordon drain expose run", _CLUSTER_STATE),
}
_HELM = {
    **_each(
        "uninstall delete del un",
        _always(_danger("uninstalls a Helm release (deletes its resources)")),
    ),
    **_each("install upgrade rollback", _CLUSTER_STATE),
}


def _terraform_apply(args: Sequence[str]) -> list[Finding]:
    if "-destroy" in args:
        return [_danger("destroys infrastructure")]
    if {"-auto-approve", "--auto-approve"} & set(args):
        return [_danger("applies infrastructure changes without review (-auto-approve)")]
    return [_caution("applies infrastructure changes")]


_STATE_EDIT = _always(_caution("edits infrastructure state"))
_TERRAFORM = {
    "destroy": _always(_danger("destroys infrastructure")),
    "apply": _terraform_apply,
    **_each("import taint untaint force-unlock", _STATE_EDIT),
    "state": _dispatch(_each("rm mv push replace-provider", _STATE_EDIT)),
}

_VOLUMES_GONE = _danger("deletes Docker volumes (their data)")
_STOPS_CONTAINERS = _always(_caution("stops containers"))


def _docker_rm(args: Sequence[str]) -> list[Finding]:
    forced = bool(_flags(args) & {"-f", "--force"})
    return [
        _caution("force-removes containers, running or not" if forced else "removes containers")
    ]


_CONTAINER = {
    "rm": _docker_rm,
    **_each("kill stop", _STOPS_CONTAINERS),
    "prune": _always(_caution("deletes stopped containers")),
}
_IMAGE = {
    "rm": _always(_caution("removes images")),
    "prune": _always(_caution("deletes unused images")),
}
_COMPOSE = {
    "down": _combine(
        _always(_caution("stops and removes containers")), _if_any("-v --volumes", _VOLUMES_GONE)
    ),
    "rm": _always(_caution("removes containers")),
}
_COMPOSE_VALUES = "-f --file -p --project-name --env-file --profile"
_DOCKER = {
    **_CONTAINER,
    "rmi": _IMAGE["rm"],
    "container": _dispatch(_CONTAINER),
    "image": _dispatch(_IMAGE),
    "volume": _dispatch(_each("rm prune", _always(_VOLUMES_GONE))),
    "network": _dispatch(_each("rm prune", _always(_caution("removes networks")))),
    "system": _dispatch(
        {
            "prune": _combine(
                _always(_caution("deletes unused Docker data (prune)")),
                _if_any("-a --all", _danger("deletes every unused Docker image")),
                _if_any("--volumes", _VOLUMES_GONE),
            )
        }
    ),
    "compose": _dispatch(_COMPOSE, _COMPOSE_VALUES),
}


# Packages and databases ------------------------------------------------------------------------

_REMOVES = _always(_caution("removes packages"))
_INSTALLS = _always(_caution("installs or upgrades packages (changes the system)"))
_PACKAGE_VERBS = {
    **_each("remove purge autoremove erase uninstall rm un del", _REMOVES),
    **_each("install i add ci upgrade dist-upgrade full-upgrade reinstall", _INSTALLS),
}
_SQL_OPTIONS = {
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
}
_SQL_CLIENTS = frozenset({*_SQL_OPTIONS, "sqlite3"})
_SQL_SCRIPT = _caution("runs a SQL script against a database (restore)")
_SQL_WORD = re.compile(r"[A-Za-z]+")


def _inline_sql(name: str, args: Sequence[str]) -> str:
    if name == "sqlite3":
        return " ".join(_operands(args)[1:])  # sqlite3 DATABASE [SQL …]
    return " ".join(_option_values(args, *_SQL_OPTIONS[name]))


def _sql_findings(sql: str) -> list[Finding]:
    """Judge statements by their keywords; DELETE or UPDATE without WHERE hits every row."""
    words = {word.upper() for word in _SQL_WORD.findall(sql)}
    if words & {"DROP", "TRUNCATE"}:
        return [_danger("drops or truncates database data")]
    changes = words & {"DELETE", "UPDATE"}
    if changes and "WHERE" not in words:
        return [_danger("changes every row of a table")]
    return [_caution("modifies database data")] if changes or words & {"ALTER", "INSERT"} else []


def _sql_client(name: str) -> Rule:
    def rule(args: Sequence[str]) -> list[Finding]:
        findings = _sql_findings(_inline_sql(name, args))
        if name == "psql" and _option_values(args, "-f", "--file"):
            findings.append(_SQL_SCRIPT)
        return findings

    return rule


# The table -------------------------------------------------------------------------------------

_RULES: dict[str, Rule] = {
    "rm": _rm,
    "rmdir": _always(_caution("removes directories")),
    "shred": _always(_danger("destroys file contents beyond recovery")),
    "wipefs": _if_any("-a --all -o --offset", _danger("erases filesystem signatures")),
    **_each("mkfs mkswap", _always(_danger("formats a filesystem (erases the device)"))),
    "dd": _dd,
    **_each("fdisk gdisk cfdisk", _unless_any("-l --list", _PARTITION_EDITOR)),
    "sfdisk": _unless_any("-l --list -d --dump", _PARTITIONS),
    "sgdisk": _if_any(_SGDISK_WRITES, _PARTITIONS),
    "parted": _parted,
    "chmod": _chmod,
    **_each("chown chgrp", _ownership("ownership")),
    "tee": _tee,
    "truncate": _truncate,
    "cp": _copy,
    "mv": _move,
    "find": _find,
    **_each("shutdown reboot poweroff halt", _POWER),
    "systemctl": _dispatch(
        {
            **_each("stop disable mask kill", _systemctl_stop),
            **_each("poweroff reboot halt kexec suspend hibernate rescue emergency", _POWER),
            "restart": _always(_caution("restarts a service")),
        }
    ),
    "kill": _kill,
    **_each("killall pkill", _always(_caution("kills processes by name"))),
    **_each("iptables ip6tables", _iptables),
    "nft": _dispatch({"flush": _always(_danger("flushes firewall rules"))}),
    "ufw": _dispatch(
        _each("disable reset deny delete", _always(_caution("changes firewall rules")))
    ),
    **_each("userdel deluser", _always(_danger("deletes a user account"))),
    "passwd": _always(_caution("changes a password")),
    "su": _always(_caution("switches user (su)")),
    "crontab": _crontab,
    "git": _dispatch(_GIT, "-C -c --git-dir --work-tree --namespace"),
    "kubectl": _dispatch(_KUBECTL, _KUBECTL_VALUES),
    "helm": _dispatch(_HELM, "-n --namespace --kube-context --kubeconfig"),
    **_each("terraform tofu", _dispatch(_TERRAFORM)),
    **_each("docker podman", _dispatch(_DOCKER, "-H --host -c --context --config -l --log-level")),
    "docker-compose": _dispatch(_COMPOSE, _COMPOSE_VALUES),
    **_each(
        "apt apt-get aptitude apk brew snap pip pip3 pipx npm pnpm yarn gem cargo conda",
        _dispatch(_PACKAGE_VERBS),
    ),
    # yum, dnf and zypper upgrade packages on `update`; apt only refreshes its lists.
    **_each("yum dnf zypper", _dispatch({**_PACKAGE_VERBS, "update": _INSTALLS})),
    **{name: _sql_client(name) for name in _SQL_CLIENTS},
    "dropdb": _always(_danger("drops a database")),
    "mysqladmin": _if_any("drop", _danger("drops a database")),
    "redis-cli": lambda args: (
        [_danger("wipes a Redis database")]
        if {"FLUSHALL", "FLUSHDB"} & {a.upper() for a in args}
        else []
    ),
    "pg_restore": _combine(
        _always(_caution("restores a database dump")),
        _if_any("-c --clean", _danger("drops database objects before restoring")),
    ),
    "mongorestore": _combine(
        _always(_caution("restores a database dump")),
        _if_any("--drop", _danger("drops collections before restoring")),
    ),
}
