"""Answers remembered for ``AI_CACHE_SECONDS``, in the broker (Redis or in-process).

The key is a hash of the operation, the model and the inputs — never the user's OpenRouter key.
Answers are shared between users only when the inputs carry nothing about the user: explaining a
command, or a suggestion asked without shell context. A suggestion with context (working
directory, recent commands) and an error explanation (the command's output) are remembered for
that user alone.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import orjson
import structlog

from devpocket.broker import Broker, BrokerUnavailable

log = structlog.get_logger(__name__)


def cache_key(operation: str, model: str, inputs: dict[str, Any], user_id: uuid.UUID | None) -> str:
    material = json.dumps(
        {
            "op": operation,
            "model": model,
            "inputs": inputs,
            "user": str(user_id) if user_id else None,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "ai-cache:" + hashlib.sha256(material.encode()).hexdigest()


class AnswerCache:
    def __init__(self, broker: Broker, seconds: int) -> None:
        self._broker = broker
        self._seconds = seconds

    async def get(self, key: str) -> dict[str, Any] | None:
        if self._seconds <= 0:
            return None
        try:
            raw = await self._broker.get(key)
        except BrokerUnavailable:
            return None
        return None if raw is None else dict(orjson.loads(raw))

    async def put(self, key: str, answer: dict[str, Any]) -> None:
        if self._seconds <= 0:
            return
        try:
            await self._broker.set(key, orjson.dumps(answer), ttl=self._seconds)
        except BrokerUnavailable:
            log.warning("ai.cache_unavailable")
