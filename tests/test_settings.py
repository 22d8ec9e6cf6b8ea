"""Settings: names of existing deployments, secrets refused or generated."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from devpocket.settings import ConfigurationError, Environment, Settings
from devpocket.ssh.secrets import generate_key_entry
from tests.conftest import IsolatedSettings


@pytest.mark.parametrize("environment", ["production", "staging"])
@pytest.mark.parametrize("secret", [None, "changeme", "secret", "short-but-not-placeholder"])
def test_outside_development_a_missing_or_placeholder_secret_refuses_to_start(
    tmp_path: Path, environment: str, secret: str | None
) -> None:
    settings = IsolatedSettings(environment=environment, jwt_secret_key=secret, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY"):
        settings.check_startup()


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    settings = IsolatedSettings(
        environment="production",
        jwt_secret_key="k" * 48,
        encryption_key=generate_key_entry(),
        data_dir=tmp_path,
    )
    settings.check_startup()
    assert settings.jwt_signing_secret() == "k" * 48


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = IsolatedSettings(data_dir=tmp_path).jwt_signing_secret()
    second = IsolatedSettings(data_dir=tmp_path).jwt_signing_secret()
    assert first == second
    assert len(first) >= 32
    secret_file = tmp_path / "jwt_secret_key"
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_a_generated_secret_creates_the_data_dir_for_the_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "parent" / "data"
    IsolatedSettings(data_dir=data_dir).jwt_signing_secret()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.parent.stat().st_mode) == 0o700


def test_an_existing_data_dir_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o750)
    IsolatedSettings(data_dir=data_dir).jwt_signing_secret()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o750


def test_asymmetric_algorithm_needs_key_files(tmp_path: Path) -> None:
    settings = IsolatedSettings(jwt_algorithm="RS256", data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="JWT_PRIVATE_KEY_FILE"):
        settings.check_startup()


def test_environment_names_of_existing_deployments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Reading the environment is the Settings class's job; this test checks the names it reads.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("TESTING", "false")
    monkeypatch.setenv("APP_DEBUG", "true")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/devpocket")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("JWT_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")
    monkeypatch.setenv("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "15")
    monkeypatch.setenv("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "7")
    monkeypatch.setenv("OPENROUTER_API_BASE_URL", "http://127.0.0.1:9/api/v1")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("DEVPOCKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOOGLE_CLIENT_IDS", "a.apps, b.apps")
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert settings.app_debug
    assert settings.database_url == "postgresql://u:p@db:5432/devpocket"
    assert settings.redis_url == SecretStr("redis://cache:6379/0")
    assert settings.jwt_access_token_expire_minutes == 15
    assert settings.jwt_refresh_token_expire_days == 7
    assert settings.openrouter_api_base_url == "http://127.0.0.1:9/api/v1"
    assert settings.log_level == "WARNING"
    assert settings.data_dir == tmp_path
    assert settings.google_client_ids == ["a.apps", "b.apps"]
    assert settings.rate_limit_enabled is False


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = IsolatedSettings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path}/devpocket.sqlite3"


RATE_LIMIT_SETTINGS = [
    "login_failures_per_account_source",
    "login_failures_per_source",
    "mail_requests_per_address",
    "api_rate_limit_anonymous",
    "api_rate_limit_free",
    "api_rate_limit_pro",
    "api_rate_limit_team",
    "auth_rate_limit",
    "ssh_tests_per_user",
]


@pytest.mark.parametrize("name", RATE_LIMIT_SETTINGS)
@pytest.mark.parametrize("value", ["lots", "", "120 per", "/minute", "120/fortnight"])
def test_a_malformed_rate_limit_refuses_to_load_naming_the_setting(name: str, value: str) -> None:
    overrides: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError, match=name) as raised:
        IsolatedSettings(**overrides)
    assert "120/minute" in str(raised.value)


@pytest.mark.parametrize("name", RATE_LIMIT_SETTINGS)
@pytest.mark.parametrize("value", ["120/minute", "5/15 minutes", "50 per hour", "1/second"])
def test_a_well_formed_rate_limit_is_accepted(name: str, value: str) -> None:
    overrides: dict[str, Any] = {name: value}
    assert getattr(IsolatedSettings(**overrides), name) == value


@pytest.mark.parametrize("entry", ["proxy.internal", "10.0.0.0/33", "10.0.0.300", "fe80::/129"])
def test_a_trusted_proxy_that_is_not_an_address_or_network_refuses_to_load(entry: str) -> None:
    # As written in TRUSTED_PROXIES: comma-separated.
    overrides: dict[str, Any] = {"trusted_proxies": f"10.0.0.0/8,{entry}"}
    with pytest.raises(ValidationError, match="trusted_proxies") as raised:
        IsolatedSettings(**overrides)
    assert entry in str(raised.value)


def test_trusted_proxies_accept_addresses_and_networks_of_both_families() -> None:
    entries = ["10.0.0.0/8", "127.0.0.1", "192.168.1.7/24", "::1", "fd00::/8"]
    assert IsolatedSettings(trusted_proxies=entries).trusted_proxies == entries


@pytest.mark.parametrize(
    ("given", "expected"), [("", None), ("/run/metrics", Path("/run/metrics"))]
)
def test_an_empty_prometheus_multiproc_dir_is_unset_as_prometheus_client_reads_it(
    given: str, expected: Path | None
) -> None:
    overrides: dict[str, Any] = {"prometheus_multiproc_dir": given}
    assert IsolatedSettings(**overrides).prometheus_multiproc_dir == expected
