"""Checking frames against the documented protocol (``docs/websocket-protocol.schema.json``)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "websocket-protocol.schema.json"


@cache
def _validator(definition: str) -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    resource = Resource.from_contents(schema)
    registry: Registry[Any] = Registry().with_resource(schema["$id"], resource)
    return Draft202012Validator(
        {"$ref": f"{schema['$id']}#/$defs/{definition}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def check_frame(frame: dict[str, Any]) -> None:
    """Raise with the reasons when a server frame does not follow the documented protocol."""
    errors = list(_validator("server_frame").iter_errors(frame))
    assert not errors, (frame, [e.message for e in errors])
    stamp = datetime.fromisoformat(frame["timestamp"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None, frame


def check_client_frame(frame: dict[str, Any]) -> None:
    errors = list(_validator("client_frame").iter_errors(frame))
    assert not errors, (frame, [e.message for e in errors])
