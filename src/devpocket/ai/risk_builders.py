"""How a risk rule is written: a function from a program's arguments to findings.

The builders make the common shapes (always, when a flag is there, unless a dry run is, by
subcommand), so that most entries of the rule table are one line. Separate so that every
family of rules can use them and the table can import every family without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from devpocket.ai.risk_findings import Finding
from devpocket.ai.shell import _flags, _options, _subcommand

Rule = Callable[[Sequence[str]], list[Finding]]


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
