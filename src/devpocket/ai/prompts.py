"""What the model is told. Inputs are quoted as data, never as instructions."""

from __future__ import annotations

import json

from devpocket.ai.schemas import ShellContext

_JSON_ONLY = "Answer with one JSON object only, matching the requested shape; no prose around it."

SUGGEST = (
    "You help a developer on a phone terminal turn a request into shell commands. Propose 1 to 5 "
    "commands, best first, each a single line that runs as is in the given shell and OS, with a "
    "one-sentence explanation. Prefer safe, read-only forms; never invent file names the user did "
    f'not mention. Shape: {{"commands": [{{"command": str, "explanation": str}}]}}. {_JSON_ONLY}'
)
EXPLAIN = (
    "Explain a shell command to a developer: a one-paragraph summary, then each part (program, "
    "subcommand, flag, argument, pipe, redirect) with what it does. Mention what it changes or "
    f'deletes. Shape: {{"summary": str, "parts": [{{"part": str, "meaning": str}}]}}. {_JSON_ONLY}'
)
EXPLAIN_ERROR = (
    "A shell command failed. From the command, its exit code and the end of its output, give the "
    "most likely cause and concrete fixes, each with the command that fixes it when one does. "
    'Shape: {"cause": str, "fixes": [{"description": str, "command": str | null}]}. ' + _JSON_ONLY
)
EXPLAIN_STREAM = (
    "Explain a shell command to a developer in plain text: what it does as a whole, then part by "
    "part, then what it changes or deletes. Be concise."
)
EXPLAIN_ERROR_STREAM = (
    "A shell command failed. In plain text, give the most likely cause, then concrete fixes with "
    "the commands that apply them. Be concise."
)

# The end of the output is where the error usually is; the model needs no more than this.
OUTPUT_TAIL_CHARS = 6000


def _context(context: ShellContext | None) -> dict[str, object]:
    if context is None:
        return {}
    return context.model_dump(exclude_none=True, exclude_defaults=True)


def suggest_messages(prompt: str, context: ShellContext | None) -> list[dict[str, str]]:
    data = {"request": prompt, "context": _context(context)}
    return [{"role": "system", "content": SUGGEST}, {"role": "user", "content": json.dumps(data)}]


def explain_messages(command: str, *, stream: bool = False) -> list[dict[str, str]]:
    system = EXPLAIN_STREAM if stream else EXPLAIN
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps({"command": command})},
    ]


def error_messages(
    command: str, output: str, exit_code: int | None, *, stream: bool = False
) -> list[dict[str, str]]:
    data = {"command": command, "exit_code": exit_code, "output_tail": output[-OUTPUT_TAIL_CHARS:]}
    system = EXPLAIN_ERROR_STREAM if stream else EXPLAIN_ERROR
    return [{"role": "system", "content": system}, {"role": "user", "content": json.dumps(data)}]
