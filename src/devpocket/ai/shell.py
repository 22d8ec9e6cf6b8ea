"""Shell command lines split the way a POSIX shell splits them, for the risk classifier.

A pre-pass does what shlex cannot (comments, line continuations, quoted operator characters,
substitutions cut out to be classified on their own), shlex with punctuation characters
tokenizes, and the tokens are grouped into pipelines of simple commands, with redirections set
aside. Arguments are read the way programs read them, and wrappers (sudo, env, nice, timeout,
xargs …) are peeled off down to the program that runs.

Separate from the rules because this is syntax, not knowledge of programs: the only labels
given here are those a wrapper carries (sudo needs root).
"""

from __future__ import annotations

import itertools
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from devpocket.ai.risk_findings import Finding, _caution

_OPERATOR_CHARS = frozenset("();<>|&")
# Quoted or escaped operator characters travel through shlex as these words, so that
# `echo ";"` stays one command; they are turned back into characters in each argument.
_ESCAPES = {char: f"__devpocket_op{ord(char)}__" for char in _OPERATOR_CHARS}
_UNESCAPES = {word: char for char, word in _ESCAPES.items()}
_ESCAPED = re.compile("|".join(_UNESCAPES))
_SUBSTITUTION = re.compile(r"__devpocket_sub(\d+)__")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*\+?=")
_RESERVED = frozenset({"!", "{", "}", "do", "then", "else", "elif", "if", "while", "until"})


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


# Wrappers --------------------------------------------------------------------------------------


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
