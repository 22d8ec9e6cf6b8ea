"""Database URLs in every form deployments use."""

from __future__ import annotations

import pytest

from devpocket.db.engine import normalize_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+asyncpg://u:p@h/db?ssl=require"),
        ("postgresql://u:p%40ss@h/db", "postgresql+asyncpg://u:p%40ss@h/db"),
        (
            "sqlite:////var/lib/devpocket/db.sqlite3",
            "sqlite+aiosqlite:////var/lib/devpocket/db.sqlite3",
        ),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "no-scheme"])
def test_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        normalize_database_url(url)
