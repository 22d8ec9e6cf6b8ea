"""A live server per test, configured for terminals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import SettingsFactory
from tests.terminal.live import LiveServer, live_server


@pytest.fixture
def terminal_options() -> dict[str, object]:
    """Settings a test module overrides for its server (override this fixture)."""
    return {}


@pytest.fixture
async def live(
    settings_factory: SettingsFactory, terminal_options: dict[str, object]
) -> AsyncIterator[LiveServer]:
    settings = settings_factory(**{"terminal_shell": "/bin/bash", **terminal_options})
    async with live_server(settings) as server:
        yield server
