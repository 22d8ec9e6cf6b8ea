"""Structured logging: JSON in production, readable in development; secrets redacted.

structlog writes straight to stderr (orjson for JSON) rather than through the stdlib ``logging``
machinery, which costs several times more per line on the hot path (one access line per
request). Records from libraries that use ``logging`` (uvicorn, alembic) are rendered alike.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from devpocket.settings import Settings

_SECRET_KEYS = re.compile(
    r"pass(word|phrase)?|secret|token|authorization|api[_-]?key|private[_-]?key|cookie|credential",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Log lines reuse a small set of keys: decide each once, not once per line.
    return key != "event" and _SECRET_KEYS.search(key) is not None


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Blank values under secret-sounding keys and bearer tokens inside strings."""
    for key, value in event_dict.items():
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str) and "earer " in value:
            event_dict[key] = _BEARER.sub(r"\1 " + REDACTED, value)
    return event_dict


def _orjson_dumps(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=str)


_QUERY_TOKEN = re.compile(r"([?&](?:token|access_token)=)[^&\s\"']+")


class QueryTokenFilter(logging.Filter):
    """Blank tokens in URLs that libraries log (uvicorn logs each WebSocket's path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _QUERY_TOKEN.sub(r"\1[redacted]", message), None
        return True


_PARAMETER_LOGGERS = ("aiosqlite", "sqlalchemy.engine")


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    level = logging.getLevelNamesMapping()[settings.log_level]
    if settings.human_logs:
        # Plain tracebacks: rich ones print local variables, which can hold keys and passwords.
        renderer: Any = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback
        )
        factory: Any = structlog.PrintLoggerFactory(sys.stderr)
        stdlib_renderer: Any = renderer
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        factory = structlog.BytesLoggerFactory(sys.stderr.buffer)
        shared.append(structlog.processors.format_exc_info)
        stdlib_renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        # Tests capture logs by reconfiguring structlog, which cached loggers would bypass.
        cache_logger_on_first_use=not settings.testing,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                stdlib_renderer,
            ],
        )
    )
    handler.addFilter(QueryTokenFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log statements with their parameters (password and token hashes) once
    # their logger is enabled below WARNING: never, whatever LOG_LEVEL says.
    for name in _PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # uvicorn's access log duplicates ours, with less context.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
