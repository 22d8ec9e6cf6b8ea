"""Shell integration: bash and zsh write OSC 133/633 marks around prompts and commands.

The marks (read by ``marks.MarkScanner``) let the server cut a session's output into command
blocks with their command line, working directory and exit status, as Warp and VS Code do. The
scripts are written once at server start; ``shell_launch`` says how to start a shell with them.
Values in the marks are escaped: a backslash as ``\\\\``, ``;`` and control characters as ``\\xHH``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devpocket.settings import create_private_directory

BASH_SCRIPT = "bash/devpocket.bash"
ZSH_DIRECTORY = "zsh"

_BASH_LOGIN = r"""# DevPocket shell integration for bash: OSC 133/633 marks around each command.
# bash reads no profile when started with --init-file, so this file first does what a login
# shell would do, then installs its hooks after the user's own startup files have run.
if [ -r /etc/profile ]; then . /etc/profile; fi
if [ -r ~/.bash_profile ]; then . ~/.bash_profile
elif [ -r ~/.bash_login ]; then . ~/.bash_login
elif [ -r ~/.profile ]; then . ~/.profile
elif [ -r ~/.bashrc ]; then . ~/.bashrc
fi
"""

_BASH_HOOKS = r"""__devpocket_prompt_a='\[\e]133;A\a\]'
__devpocket_prompt_b='\[\e]133;B\a\]'
__devpocket_started=
__devpocket_armed=
__devpocket_history_next=

# Sets __devpocket_escaped to $1 with \, ; and control characters escaped (no subshell).
__devpocket_escape() {
    local bs='\' s i hex char
    s=${1//"$bs"/"$bs$bs"}
    s=${s//;/"${bs}x3b"}
    if [[ $s == *[[:cntrl:]]* ]]; then
        for ((i = 1; i < 32; i++)); do
            builtin printf -v hex '%02x' "$i"
            builtin printf -v char "\\x$hex"
            s=${s//"$char"/"${bs}x$hex"}
        done
    fi
    __devpocket_escaped=$s
}

# First in PROMPT_COMMAND: the status of the command that just ended is still in $?.
__devpocket_prompt_start() {
    local code=$?
    __devpocket_armed=
    if [[ -n $__devpocket_started ]]; then
        builtin printf '\e]133;D;%s\a' "$code"
        __devpocket_started=
    fi
    __devpocket_escape "$PWD"
    builtin printf '\e]633;P;Cwd=%s\a' "$__devpocket_escaped"
    return "$code"
}

# Last in PROMPT_COMMAND: the user's prompt code may have rewritten PS1, so wrap it here.
__devpocket_prompt_end() {
    local code=$? ps1=${PS1-}
    ps1=${ps1//"$__devpocket_prompt_a"/}
    ps1=${ps1//"$__devpocket_prompt_b"/}
    PS1=$__devpocket_prompt_a$ps1$__devpocket_prompt_b
    # The line the user enters next gets this history number if bash saves it.
    __devpocket_history_next=${HISTCMD-}
    __devpocket_armed=1
    return "$code"
}

# The DEBUG trap: fires before every simple command; only the first one after a prompt is the
# start of the user's command line (not completion functions, not bind -x widgets).
__devpocket_preexec() {
    if [[ -n $__devpocket_armed && -z ${COMP_LINE-} && -z ${READLINE_LINE+x} ]] &&
        [[ $BASH_COMMAND != __devpocket_prompt_start ]]; then
        __devpocket_armed=
        local line=$BASH_COMMAND entry
        if [[ -o history && ${HISTCMD-} == "$__devpocket_history_next" ]]; then
            entry=$(HISTTIMEFORMAT='' builtin history 1)
            if [[ $entry =~ ^[[:space:]]*[0-9]+[*[:space:]][[:space:]](.*)$ ]]; then
                line=${BASH_REMATCH[1]}
            fi
        fi
        __devpocket_escape "$line"
        builtin printf '\e]633;E;%s\a\e]133;C\a' "$__devpocket_escaped"
        __devpocket_started=1
    fi
    return "${1-0}"
}

if [[ -n ${PROMPT_COMMAND+x} && ${PROMPT_COMMAND@a} == *a* ]]; then
    PROMPT_COMMAND=(__devpocket_prompt_start "${PROMPT_COMMAND[@]}" __devpocket_prompt_end)
else
    PROMPT_COMMAND=$'__devpocket_prompt_start\n'${PROMPT_COMMAND-}$'\n__devpocket_prompt_end'
fi

# Chain the user's DEBUG trap, giving it the $? it would have seen without this one.
__devpocket_user_debug=$(trap -p DEBUG)
if [[ -n $__devpocket_user_debug ]]; then
    __devpocket_user_debug=${__devpocket_user_debug#"trap -- "}
    eval "__devpocket_user_debug=${__devpocket_user_debug%" DEBUG"}"
    trap '__devpocket_preexec "$?"'$'\n'"$__devpocket_user_debug" DEBUG
else
    trap '__devpocket_preexec' DEBUG
fi
"""

_ZSHENV = r"""# DevPocket shell integration for zsh. zsh reads its startup files from ZDOTDIR,
# which points here; each of these files runs the user's own with the user's ZDOTDIR in
# place, .zshrc adds the hooks, and the last file to run gives ZDOTDIR back to the user.
__devpocket_zdotdir=$ZDOTDIR
if (( ${+DEVPOCKET_USER_ZDOTDIR} )); then
    __devpocket_user_zdotdir=$DEVPOCKET_USER_ZDOTDIR
    unset DEVPOCKET_USER_ZDOTDIR
fi

__devpocket_enter() {
    if (( ${+__devpocket_user_zdotdir} )); then
        export ZDOTDIR=$__devpocket_user_zdotdir
    else
        unset ZDOTDIR
    fi
}

# The user's file may have moved ZDOTDIR: the remaining user files are read from there.
__devpocket_leave() {
    if (( ${+ZDOTDIR} )); then
        __devpocket_user_zdotdir=$ZDOTDIR
    else
        unset __devpocket_user_zdotdir
    fi
    ZDOTDIR=$__devpocket_zdotdir
}

__devpocket_finish() {
    __devpocket_enter
    unset __devpocket_zdotdir __devpocket_user_zdotdir
    unfunction __devpocket_enter __devpocket_leave __devpocket_finish
}

__devpocket_enter
[[ -r "${ZDOTDIR:-$HOME}/.zshenv" ]] && builtin source "${ZDOTDIR:-$HOME}/.zshenv"
__devpocket_leave
"""

_ZPROFILE = r"""# DevPocket shell integration for zsh: runs the user's .zprofile (see .zshenv).
__devpocket_enter
[[ -r "${ZDOTDIR:-$HOME}/.zprofile" ]] && builtin source "${ZDOTDIR:-$HOME}/.zprofile"
__devpocket_leave
"""

_ZSHRC_USER = r"""# DevPocket shell integration for zsh: runs the user's .zshrc (see .zshenv), then
# adds hooks that write OSC 133/633 marks around prompts and commands.
__devpocket_enter
[[ -r "${ZDOTDIR:-$HOME}/.zshrc" ]] && builtin source "${ZDOTDIR:-$HOME}/.zshrc"
__devpocket_leave
"""

_ZSH_HOOKS = r"""typeset -g __devpocket_started=0
typeset -g __devpocket_prompt_a=$'%{\e]133;A\a%}'
typeset -g __devpocket_prompt_b=$'%{\e]133;B\a%}'

# Sets REPLY to $1 with \, ; and control characters escaped.
__devpocket_escape() {
    builtin emulate -L zsh
    local bs='\' s i hex
    s=${1//$bs/$bs$bs}
    s=${s//;/${bs}x3b}
    if [[ $s == *[[:cntrl:]]* ]]; then
        for (( i = 1; i < 32; i++ )); do
            builtin printf -v hex '%02x' $i
            s=${s//${(#)i}/${bs}x$hex}
        done
    fi
    REPLY=$s
}

# First precmd hook: the status of the command that just ended is still in $?.
__devpocket_precmd() {
    local code=$?
    builtin emulate -L zsh
    if (( __devpocket_started )); then
        builtin printf '\e]133;D;%s\a' $code
        __devpocket_started=0
    fi
    __devpocket_escape "$PWD"
    builtin printf '\e]633;P;Cwd=%s\a' "$REPLY"
    return code
}

# Last precmd hook: a theme's hooks may have rewritten PS1, so wrap it here.
__devpocket_prompt() {
    local code=$?
    builtin emulate -L zsh
    local ps1=${PS1//$__devpocket_prompt_a/}
    ps1=${ps1//$__devpocket_prompt_b/}
    PS1=$__devpocket_prompt_a$ps1$__devpocket_prompt_b
    return code
}

# $1 is the command line exactly as typed (empty when history is off: $3 is the full text).
__devpocket_preexec() {
    builtin emulate -L zsh
    __devpocket_escape "${1:-$3}"
    builtin printf '\e]633;E;%s\a\e]133;C\a' "$REPLY"
    __devpocket_started=1
}

autoload -Uz add-zsh-hook
add-zsh-hook precmd __devpocket_precmd
add-zsh-hook precmd __devpocket_prompt
add-zsh-hook preexec __devpocket_preexec
precmd_functions=(__devpocket_precmd ${precmd_functions:#__devpocket_precmd})
"""

_ZSHRC_END = r"""
if [[ ! -o login ]]; then
    __devpocket_finish
fi
"""

_ZLOGIN = r"""# DevPocket shell integration for zsh: runs the user's .zlogin (see .zshenv), the
# last file a login shell reads, and gives ZDOTDIR back to the user.
__devpocket_enter
[[ -r "${ZDOTDIR:-$HOME}/.zlogin" ]] && builtin source "${ZDOTDIR:-$HOME}/.zlogin"
__devpocket_finish
"""

_BASH = _BASH_LOGIN + "\n" + _BASH_HOOKS
_ZSHRC = _ZSHRC_USER + "\n" + _ZSH_HOOKS + _ZSHRC_END

_FILES = {
    BASH_SCRIPT: _BASH,
    f"{ZSH_DIRECTORY}/.zshenv": _ZSHENV,
    f"{ZSH_DIRECTORY}/.zprofile": _ZPROFILE,
    f"{ZSH_DIRECTORY}/.zshrc": _ZSHRC,
    f"{ZSH_DIRECTORY}/.zlogin": _ZLOGIN,
}


# SSH sessions: the script is written on the remote host, then sourced into the login shell.
REMOTE_PATH = ".cache/devpocket/shell-integration.sh"  # under the remote user's home
REMOTE_READY = b"\x1b]633;P;DevPocket=ready\x07"
# Typed into the remote shell; the leading space keeps it out of a history that ignores such.
REMOTE_SOURCE_LINE = f' . "$HOME/{REMOTE_PATH}"\r'.encode()
# Writes the script (from stdin); any login shell can run this, fish included.
REMOTE_INSTALL = f'mkdir -p "$HOME/{REMOTE_PATH.rsplit("/", 1)[0]}" && cat > "$HOME/{REMOTE_PATH}"'


def _quoted(text: str) -> str:
    """``text`` as one single-quoted word of POSIX sh."""
    return "'" + text.replace("'", "'\\''") + "'"


def remote_script() -> str:
    """The file sourced into an SSH session's login shell: the hooks for bash or zsh.

    The user's startup files have already run (the shell logged in), so only the hooks are
    installed. Each shell's hooks are ``eval``-ed, so that each is parsed only by its own shell.
    In bash the line that sourced the file is taken out of the history again. Whatever the
    shell, the file ends by printing ``REMOTE_READY``: the server hides what the shell echoes
    up to there.
    """
    unrecord = (
        "__devpocket_line=$(HISTTIMEFORMAT='' builtin history 1)\n"
        f"if [[ $__devpocket_line == *{REMOTE_PATH}* &&"
        " $__devpocket_line =~ ^[[:space:]]*([0-9]+) ]]; then\n"
        '    builtin history -d "${BASH_REMATCH[1]}"\n'
        "fi\n"
        "unset __devpocket_line\n"
    )
    return (
        "# DevPocket shell integration for SSH sessions, written and sourced by the DevPocket\n"
        "# server when a session asks for it: OSC 133/633 marks in bash and zsh, nothing else.\n"
        'if [ -n "${BASH_VERSION-}" ]; then\n'
        f"    eval {_quoted(unrecord + _BASH_HOOKS)}\n"
        'elif [ -n "${ZSH_VERSION-}" ]; then\n'
        f"    eval {_quoted(_ZSH_HOOKS)}\n"
        "fi\n"
        # After the mark, shown: back to the start of the line of the prompt the source line was
        # typed at, and clear it; the shell's next prompt takes its place.
        "printf '\\033]633;P;DevPocket=ready\\007\\r\\033[K'\n"
    )


@dataclass(frozen=True, slots=True)
class ShellLaunch:
    argv: list[str]
    env: dict[str, str]  # variables to add to the child's environment
    marks: bool  # whether this shell gets integration


def write_integration_files(directory: Path) -> None:
    """Write the bash and zsh integration scripts under ``directory``; called at server start.

    Idempotent. Each file is replaced atomically: a shell starting meanwhile (another server
    process on this host) reads the old script or the new one, never half of one.
    """
    create_private_directory(directory)
    directory.chmod(0o700)
    for relative, text in _FILES.items():
        path = directory / relative
        path.parent.mkdir(mode=0o700, exist_ok=True)
        _write(path, text.encode())


def _write(path: Path, data: bytes) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            path.chmod(0o600)
            return
    # mkstemp creates the file with mode 0o600.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def shell_launch(shell: str, directory: Path, *, user_zdotdir: str | None = None) -> ShellLaunch:
    """How to start ``shell`` (an absolute path, e.g. /bin/bash) as an interactive login shell.

    bash and zsh get the marks; other shells start as plain login shells. ``user_zdotdir`` is
    the ZDOTDIR zsh would have had: None when unset, and zsh then reads the user's files from
    HOME and leaves ZDOTDIR unset, as it would have been.
    """
    name = Path(shell).name
    if name == "bash":
        return ShellLaunch(
            [shell, "--init-file", str(directory / BASH_SCRIPT), "-i"], {}, marks=True
        )
    if name == "zsh":
        env = {"ZDOTDIR": str(directory / ZSH_DIRECTORY)}
        if user_zdotdir is not None:
            env["DEVPOCKET_USER_ZDOTDIR"] = user_zdotdir
        return ShellLaunch([shell, "-l", "-i"], env, marks=True)
    return ShellLaunch([shell, "-l"], {}, marks=False)
