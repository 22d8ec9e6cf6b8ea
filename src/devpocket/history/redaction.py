"""Secrets typed on a command line (or printed in its output) are masked before storage.

Each rule finds a secret and replaces it with ``[REDACTED]``, keeping the rest of the text as
typed (the option, the variable name, the quotes around a value). The rules, in order:

- ``private_key``: the body of a PEM ``-----BEGIN … PRIVATE KEY-----`` block (a ``cat id_rsa``).
- ``known_token``: tokens recognisable by their shape wherever they appear: GitHub (``ghp_…``,
  ``gho_…``, ``ghu_…``, ``ghs_…``, ``ghr_…``, ``github_pat_…``), GitLab (``glpat-…``), Slack
  (``xoxb-…``, ``xoxa-…``, ``xoxp-…``, …), AWS access key ids (``AKIA…``, ``ASIA…``), OpenAI-style
  keys (``sk-…``, also ``sk-proj-…``, ``sk-ant-…``), Stripe (``sk_live_…``, ``rk_test_…``), Google
  (``AIza…``), npm (``npm_…``), Hugging Face (``hf_…``) and JSON Web Tokens (``eyJ….eyJ….…``).
- ``url_credentials``: the password of ``scheme://user:password@host``.
- ``url_query``: the value of a URL query parameter named like a secret (``?token=``,
  ``&access_token=``, ``api_key=``, ``key=``, ``secret=``, ``password=``, ``sig=``, ``signature=``,
  ``X-Amz-Security-Token=`` …: a name ending in token, key, secret, password, passwd, pwd, sig,
  signature or auth).
- ``header``: HTTP headers that carry credentials, in ``curl -H`` or in output:
  ``Authorization: Bearer …`` (the scheme is kept), ``Proxy-Authorization``, ``X-Api-Key``,
  ``X-Auth-Token``, ``Private-Token``, ``X-Vault-Token``, ``Cookie``.
- ``option``: the value of a command-line option named like a secret: ``--password=…``,
  ``--password …``, ``--token``, ``--secret``, ``--api-key``, ``--access-key``,
  ``--client-secret``, ``--passphrase``, ``--db-password`` …, and ``-storepass``/``-keypass``.
  A value after a space must not start with ``-`` (``mysql --password -u root`` prompts).
- ``client``: the password flags of common clients, only after that client's name in the same
  simple command: ``mysql``/``mariadb``/``mysqldump``/… ``-pSECRET`` (attached; ``-p`` alone
  prompts), ``sshpass -p SECRET``, ``redis-cli -a SECRET``, ``mongo``/``mongosh``/… ``-p SECRET``,
  ``docker``/``podman``/``nerdctl``/``helm registry`` ``login -p SECRET``, ``sqlcmd``/``bcp``
  ``-P SECRET``, ``curl -u user:SECRET`` and ``http``/``xh`` ``-a user:SECRET``. Elsewhere ``-p``
  means something else (``ls -p``, ``grep -p``, ``ssh -p 22``) and is left alone.
- ``assignment``: ``NAME=value`` where NAME looks like a secret's name, with or without
  ``export``, ``env``, ``declare -x``, ``docker run -e``, ``--build-arg``; also fish's
  ``set -x NAME value``, Windows' ``setx NAME value`` and PowerShell's ``$env:NAME = value``.
- ``config_line``: ``name = value`` or ``name: value`` at the start of a line (INI, YAML, JSON,
  ``~/.aws/credentials``), for a secret's name.

A secret's name (case-insensitive) has a word (split on ``_``, ``-`` or ``.``) that is PASSWORD,
PASSWD, PASSPHRASE, SECRET or TOKEN (or TOKENS), or ends in ``_KEY``, ``_PWD`` or ``APIKEY``, or
is one of PGPASSWORD, PASS, KEY, AUTH, REDISCLI_AUTH: ``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``,
``DB_PASSWORD``, ``OPENAI_API_KEY``, ``MYSQL_PWD``. ``TOKENIZERS_PARALLELISM`` or ``OLDPWD`` are
not. A value that starts with ``$`` is a reference to another variable (``TOKEN=$VAULT_TOKEN``,
``"$(vault read …)"``), not a secret, and is kept.

Masking is idempotent: redacting a redacted text changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REDACTED = "[REDACTED]"

# One shell word: bare characters and quoted pieces, without a nested quantifier (no runaway
# backtracking on long outputs). A comma ends it only before another ``name=``
# (``-o username=bob,password=…``).
_WORD = r"""(?:[^\s'"`;&|<>(),]|,(?![A-Za-z_]\w*=)|'[^'\n]*'|"(?:[^"\\\n]|\\.)*")+"""
_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "pass", "secret", "token", "tokens"})
_SECRET_NAMES = frozenset({"pgpassword", "key", "auth", "rediscli_auth"})
_SECRET_SUFFIXES = ("_key", "_pwd", "apikey")
# Every secret name, option and parameter contains one of these: text without any skips the
# rules that look for names (most terminal output).
_NAME_HINTS = ("pass", "pwd", "secret", "token", "key", "auth", "sig")


def is_secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_").replace(".", "_")
    if lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES):
        return True
    return any(word in _SECRET_WORDS for word in lowered.split("_"))


def _mask(value: str) -> str:
    """``[REDACTED]`` in the value's own quotes; a ``$`` reference is not a secret."""
    if value.startswith(("$", '"$')):
        return value
    # A comma after the value separates it from what follows (`"api_key": "…",`).
    stripped = value.rstrip(",")
    if stripped != value:
        return _mask(stripped) + value[len(stripped) :] if stripped else value
    quote = value[0]
    if quote in "'\"" and len(value) > 1 and value.endswith(quote):
        return f"{quote}{REDACTED}{quote}"
    return REDACTED


def _masked(match: re.Match[str]) -> str:
    """The match with its ``value`` group masked, the rest as it was."""
    start, end = match.span("value")
    offset = match.start()
    whole = match[0]
    return whole[: start - offset] + _mask(match["value"]) + whole[end - offset :]


@dataclass(frozen=True, slots=True)
class _Rule:
    """A pattern with a ``value`` group to mask; ``named`` rules check their ``name`` group."""

    name: str
    pattern: re.Pattern[str]
    # Substring look-ups before the pattern (fast): each group needs one of its strings present
    # in the lowered text.
    hints: tuple[tuple[str, ...], ...] = ()
    named: bool = False

    def apply(self, text: str, lowered: str) -> str:
        if not all(any(hint in lowered for hint in group) for group in self.hints):
            return text
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        if self.named and not is_secret_name(match["name"]):
            return match[0]
        return _masked(match)


_TOKEN_SHAPES = (
    r"gh[pousr]_[A-Za-z0-9]{30,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"glpat-[A-Za-z0-9_-]{20,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    r"AIza[0-9A-Za-z_-]{35}",
    r"npm_[A-Za-z0-9]{36}",
    r"hf_[A-Za-z0-9]{30,}",
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
)
_TOKEN_HINTS = ("gh", "github_pat_", "glpat-", "xox", "akia", "asia", "abia", "acca", "sk-",
                "k_live_", "k_test_", "aiza", "npm_", "hf_", "eyj")  # fmt: skip
_OPTION_NAMES = (
    r"(?:[a-z0-9]+[-_])*(?:password|passwd|passphrase|pass|pwd|token|secret|auth"
    r"|api[-_]?key|access[-_]?key|secret[-_]?key)|storepass|keypass|passin|passout"
)
_HEADERS = ("x-api-key", "x-auth-token", "x-access-token", "private-token", "x-vault-token",
            "api-key", "cookie")  # fmt: skip

_RULES = (
    _Rule(
        "private_key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\s*(?P<value>.+?)\s*"
            r"(?=-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        (("private key",),),
    ),
    # The look-behind first: inside a word it fails before any alternative is tried.
    _Rule(
        "known_token",
        re.compile(rf"(?<![\w-])(?P<value>{'|'.join(_TOKEN_SHAPES)})"),
        (_TOKEN_HINTS,),
    ),
    _Rule(
        "url_credentials",
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/@:'\"]*:(?P<value>[^\s/@'\"]+)(?=@)"),
        (("://",), ("@",)),
    ),
    _Rule(
        "url_query",
        re.compile(
            r"(?i)[?&][\w.-]*?(?:token|key|secret|password|passwd|pwd|sig|signature|auth)"
            r"=(?P<value>[^&#\s'\"]+)"
        ),
        (("?", "&"), _NAME_HINTS),
    ),
    _Rule(
        "header",
        re.compile(
            # The name may be quoted: `Authorization:"Bearer …"` (HTTPie), a JSON or dict key.
            r"(?i)\b(?:proxy-)?authorization[\"']?\s*:\s*[\"']?"
            r"(?:(?:bearer|basic|token|digest|apikey|key|otp)\s+)?(?P<value>[^\s'\"]+)"
        ),
        (("authorization",),),
    ),
    _Rule(
        "header",
        re.compile(rf"(?i)\b(?:{'|'.join(_HEADERS)})\s*:\s*(?P<value>[^'\"\n]*[^'\"\s])"),
        (_HEADERS,),
    ),
    _Rule(
        "option",
        re.compile(
            rf"(?i)(?<![\w-])--?(?!no[-_])(?:{_OPTION_NAMES})(?:=|\s+(?!-))(?P<value>{_WORD})"
        ),
        (("-",), _NAME_HINTS),
    ),
    _Rule(
        "assignment",
        re.compile(rf"(?<![\w$?&-])(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>{_WORD})"),
        (("=",), _NAME_HINTS),
        named=True,
    ),
    _Rule(
        "assignment",
        re.compile(
            rf"(?<!\S)(?:set|setx)\s+(?:-[a-zA-Z]+\s+)*(?P<name>[A-Za-z_]\w*)\s+(?P<value>{_WORD})"
        ),
        (("set",), _NAME_HINTS),
        named=True,
    ),
    _Rule(
        "assignment",
        re.compile(rf"(?i)\$env:(?P<name>\w+)\s*=\s*(?P<value>{_WORD})"),
        (("$env:",),),
        named=True,
    ),
    _Rule(
        "config_line",
        re.compile(rf"(?m)^[ \t]*[\"']?(?P<name>[\w.-]+)[\"']?[ \t]*[:=][ \t]*(?P<value>{_WORD})"),
        (("=", ":"), _NAME_HINTS),
        named=True,
    ),
)

# --- Password flags that mean "password" only for particular programs -------------------------

_CLIENT_FLAGS = (
    (
        r"mysql|mariadb|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlpump|mysqlsh"
        r"|mariadb-dump|mariadb-admin",
        rf"(?<!\S)-p(?P<value>{_WORD})",
    ),
    (r"sshpass", rf"(?<!\S)-p\s*(?P<value>{_WORD})"),
    (r"redis-cli", rf"(?<!\S)-a\s+(?P<value>{_WORD})"),
    (
        r"mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop",
        rf"(?<!\S)-p\s+(?!-)(?P<value>{_WORD})",
    ),
    (
        r"(?:docker|podman|nerdctl|buildah|skopeo|helm\s+registry)\s+login",
        rf"(?<!\S)-p\s+(?!-)(?P<value>{_WORD})",
    ),
    (r"sqlcmd|bcp", rf"(?<!\S)-P\s*(?!-)(?P<value>{_WORD})"),
    (r"curl", r"(?<!\S)(?:-u|--user|-U|--proxy-user)\s*['\"]?[^\s:'\"]*:(?P<value>[^\s'\"]+)"),
    (r"http|https|xh|xhs", r"(?<!\S)(?:-a|--auth)\s*['\"]?[^\s:'\"]*:(?P<value>[^\s'\"]+)"),
)
_CLIENTS = tuple((re.compile(program), re.compile(flag)) for program, flag in _CLIENT_FLAGS)
# A client's name as a command word (after a space, a path's slash or a separator), then the rest
# of its simple command.
_CLIENT_COMMAND = re.compile(
    r"(?<![^\s/;&|(`'\"])(?P<program>"
    + "|".join(program for program, _ in _CLIENT_FLAGS)
    + r")(?=\s)(?P<args>[^;&|\n]*)"
)
# Every flag above starts with one of these after a space.
_CLIENT_HINTS = (" -p", " -a", " -u", " -P", " --user", " --auth", " --proxy-user")


def _mask_client_flags(match: re.Match[str]) -> str:
    flag = next(flag for program, flag in _CLIENTS if program.fullmatch(match["program"]))
    start = match.start("args") - match.start()
    return match[0][:start] + flag.sub(_masked, match["args"])


def redact(text: str) -> str:
    """``text`` with every secret the rules above recognise replaced by ``[REDACTED]``."""
    if not text:
        return text
    lowered = text.lower()
    for rule in _RULES:
        redacted = rule.apply(text, lowered)
        if redacted != text:
            text, lowered = redacted, redacted.lower()
    if any(hint in text for hint in _CLIENT_HINTS):
        text = _CLIENT_COMMAND.sub(_mask_client_flags, text)
    return text


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
