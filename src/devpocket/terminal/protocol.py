"""The frames of ``/ws/terminal``, and the one table of close codes.

Frames are JSON text: ``{"type", "data", "sessionId", "timestamp"}``. Input is parsed by hand
rather than by a model: a keystroke is the most frequent frame, and its path sets the echo
latency. ``docs/websocket-protocol.md`` describes every frame, and
``docs/websocket-protocol.schema.json`` is the machine-readable form the tests check frames against.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down: reconnect and reattach
    MESSAGE_TOO_BIG = 1009  # a frame beyond the WebSocket limit (the server's stack closes)
    INTERNAL_ERROR = 1011
    UNAUTHENTICATED = 4401  # missing, malformed, expired or revoked token
    ORIGIN_NOT_ALLOWED = 4403
    AUTH_TIMEOUT = 4408  # no ``auth`` frame within the time allowed
    FLOODING = 4429  # frames kept coming far above the rate limit


class FrameError(Exception):
    """An incoming frame that cannot be used; answered with an error frame, the socket stays."""

    def __init__(self, code: str, message: str, session_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.session_id = session_id


FRAME_TYPES = frozenset({"data", "resize", "control", "heartbeat", "auth"})


@dataclass(frozen=True, slots=True)
class Frame:
    type: str
    data: Any
    session_id: str | None


def parse_frame(text: str | bytes) -> Frame:
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("malformed_frame", "A frame must be a JSON object.") from None
    if not isinstance(raw, dict):
        raise FrameError("malformed_frame", "A frame must be a JSON object.")
    kind = raw.get("type")
    session_id = raw.get("sessionId", raw.get("session_id"))
    if session_id is not None and not isinstance(session_id, str):
        raise FrameError("malformed_frame", "sessionId must be a string.")
    if not isinstance(kind, str) or kind not in FRAME_TYPES:
        raise FrameError(
            "unknown_frame_type",
            f"Unknown frame type {kind!r}: expected one of {', '.join(sorted(FRAME_TYPES))}.",
            session_id,
        )
    return Frame(kind, raw.get("data"), session_id)


def parse_size(data: Any) -> tuple[int, int]:
    """``{cols, rows}`` of a resize frame or a create_session action, within 1…1000."""
    if not isinstance(data, dict):
        raise FrameError("invalid_resize", "A resize needs data {cols, rows}.")
    cols, rows = data.get("cols"), data.get("rows")
    for value in (cols, rows):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise FrameError("invalid_resize", "cols and rows must be integers from 1 to 1000.")
    return int(cols), int(rows)  # type: ignore[arg-type]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(kind: str, data: Any, session_id: str | None = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": kind, "data": data, "sessionId": session_id}
    frame.update(extra)
    frame["timestamp"] = _now()
    return orjson.dumps(frame).decode()


def output_frame(session_id: str, seq: int, chunk: bytes) -> str:
    return encode("data", chunk.decode(), session_id, seq=seq)


def control(action: str, session_id: str | None = None, **fields: Any) -> str:
    return encode("control", {"action": action, "session_id": session_id, **fields}, session_id)


def error(code: str, message: str, session_id: str | None = None) -> str:
    return control("error", session_id, code=code, error=message)
