"""The sync tests simulate many devices of one user: the plan's device limit is lifted here,
except where a test sets it (the test of that limit)."""

from __future__ import annotations

from typing import Any

import pytest

from devpocket.settings import Settings
from tests.conftest import SettingsFactory


@pytest.fixture
def settings_factory(settings_factory: SettingsFactory) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        return settings_factory(**{"sync_devices_per_user_free": -1, **overrides})

    return make
