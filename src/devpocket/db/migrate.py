"""Alembic, driven from code: ``devpocket migrate``, ``devpocket serve`` and the tests use it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from devpocket.db.engine import normalize_database_url, prepare_sqlite_file
from devpocket.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = normalize_database_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
    # ConfigParser interpolation would mangle a % in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise when the models and the migrations disagree."""
    command.check(alembic_config(settings))
