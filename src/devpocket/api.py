"""The one way domains make routers: stable operation ids and the API prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

API_PREFIX = "/api/v1"


def operation_id(route: APIRoute) -> str:
    """Stable ids a generated client reads well: ``auth_login``, ``users_get_profile``."""
    tag = str(route.tags[0]) if route.tags else "default"
    return f"{tag}_{route.name}"


def make_router(prefix: str, tag: str, **options: Any) -> APIRouter:
    """A router whose routes join the app flat (``app.py``), with their full path."""
    return APIRouter(prefix=prefix, tags=[tag], generate_unique_id_function=operation_id, **options)
