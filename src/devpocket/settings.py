"""Settings: the only reader of the environment.

Names match those existing deployments use (``DATABASE_URL``, ``JWT_SECRET_KEY`` …); every setting
is documented in the README and ``.env.example``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import secrets
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from limits import parse as parse_rate_limit
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "your_secret_key",
        "your-secret-key-here",
        "jwt-secret",
        "jwt_secret",
        "please-change-me",
        "development",
        "test",
    }
)
MIN_SECRET_LENGTH = 32


class ConfigurationError(Exception):
    """The configuration cannot run; the message names the variable to fix."""


PlanTier = Literal["free", "pro", "team"]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"


def _check_rate_limit(value: str) -> str:
    # Parsed here, as the limiters will: a typo refuses to start instead of failing each request.
    try:
        parse_rate_limit(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: expected amount/period such as '120/minute' or "
            "'5/15 minutes' (periods: second, minute, hour, day, month, year)"
        ) from None
    return value


RateLimit = Annotated[str, AfterValidator(_check_rate_limit)]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, populate_by_name=True
    )

    environment: Environment = Environment.DEVELOPMENT
    testing: bool = False
    app_debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console", "auto"] = "auto"

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("devpocket")),
        validation_alias="DEVPOCKET_DATA_DIR",
    )
    database_url: str | None = None
    # Connections kept open per process. Requests beyond it open overflow connections that are
    # closed on return (costly churn), so size it to the concurrency one process serves.
    database_pool_size: int = Field(default=20, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    database_pool_recycle: int = Field(default=1800, ge=0)
    auto_migrate: bool = True
    redis_url: SecretStr | None = None
    redis_key_prefix: str = "devpocket:"

    jwt_secret_key: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_refresh_token_expire_days: int = Field(default=30, ge=1, le=365)
    jwt_issuer: str = "devpocket"
    jwt_audience: str = "devpocket-api"
    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300)
    # The SSH vault's keyring: "id:base64url-32-bytes" entries, comma-separated, current first.
    encryption_key: SecretStr | None = None
    # How long a worker may reuse a session check it made (see devpocket/auth/cache.py); changes
    # through the API are seen at once regardless. 0 checks the database on every request.
    auth_cache_seconds: float = Field(default=60.0, ge=0, le=3600)

    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_memory_kib: int = Field(default=19 * 1024, ge=8)
    password_hash_parallelism: int = Field(default=1, ge=1)

    rate_limit_enabled: bool = True
    login_failures_per_account_source: RateLimit = "5/15 minutes"
    login_failures_per_source: RateLimit = "50/hour"
    mail_requests_per_address: RateLimit = "5/hour"
    api_rate_limit_anonymous: RateLimit = "60/minute"
    api_rate_limit_free: RateLimit = "120/minute"
    api_rate_limit_pro: RateLimit = "600/minute"
    api_rate_limit_team: RateLimit = "1200/minute"
    auth_rate_limit: RateLimit = "60/minute"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    metrics_token: SecretStr | None = None
    # Where prometheus-client keeps each process's values as files; with --workers > 1 the command
    # defaults it into the data dir. Empty is unset, as prometheus-client reads it.
    prometheus_multiproc_dir: Path | None = None
    health_check_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    public_base_url: str = "http://127.0.0.1:8000"
    smtp_url: SecretStr | None = None
    mail_from: str = "DevPocket <no-reply@devpocket.local>"
    mail_timeout_seconds: float = Field(default=10.0, gt=0)
    password_reset_token_minutes: int = Field(default=60, ge=5, le=24 * 60)
    email_verification_token_hours: int = Field(default=48, ge=1)

    google_client_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_jwks_cache_seconds: int = Field(default=3600, ge=0)

    openrouter_api_base_url: str = "https://openrouter.ai/api/v1"
    ai_default_model: str = "openai/gpt-4o-mini"
    ai_cache_seconds: int = Field(default=3600, ge=0)
    ai_timeout_seconds: float = Field(default=60.0, gt=0)
    # Plan limits by tier (devpocket/billing/plans.py reads them): -1 unlimited, 0 off.
    ai_requests_per_month_free: int = Field(default=50, ge=-1)
    ai_requests_per_month_pro: int = Field(default=1000, ge=-1)
    ai_requests_per_month_team: int = Field(default=-1, ge=-1)

    ssh_profiles_per_user_free: int = Field(default=50, ge=-1)
    ssh_profiles_per_user_pro: int = Field(default=-1, ge=-1)
    ssh_profiles_per_user_team: int = Field(default=-1, ge=-1)
    # Older deployments' one limit for every tier: when set, the default of each tier's setting.
    ssh_profiles_max: int | None = Field(default=None, ge=1)
    ssh_tests_per_user: RateLimit = "20/minute"
    # None: refuse private, loopback and link-local targets except in development and testing.
    ssh_block_private_targets: bool | None = None

    # Terminals. None: local shells on in development, off otherwise (they run as the server).
    allow_local_shell: bool | None = None
    terminal_shell: str | None = None  # default: $SHELL of the server, else /bin/bash
    terminal_detach_timeout_seconds: int = Field(default=30 * 60, ge=1, le=24 * 3600)
    terminal_buffer_bytes: int = Field(default=2 * 1024 * 1024, ge=256 * 1024, le=256 * 1024 * 1024)
    terminal_sessions_max: int = Field(default=500, ge=1)
    terminal_sessions_per_user_free: int = Field(default=3, ge=-1)
    terminal_sessions_per_user_pro: int = Field(default=10, ge=-1)
    terminal_sessions_per_user_team: int = Field(default=25, ge=-1)
    terminal_max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    terminal_frames_per_second: int = Field(default=200, ge=1)
    terminal_auth_timeout_seconds: float = Field(default=10.0, gt=0)
    terminal_heartbeat_seconds: float = Field(default=30.0, gt=0)

    # Subscriptions (docs/subscriptions.md): days of cloud command history, devices that sync.
    history_retention_days_free: int = Field(default=30, ge=-1)
    history_retention_days_pro: int = Field(default=365, ge=-1)
    history_retention_days_team: int = Field(default=-1, ge=-1)
    sync_devices_per_user_free: int = Field(default=2, ge=-1)
    sync_devices_per_user_pro: int = Field(default=5, ge=-1)
    sync_devices_per_user_team: int = Field(default=-1, ge=-1)
    # Superseded feed changes and stored push answers are kept this long (docs/sync.md).
    sync_feed_retention_days: int = Field(default=90, ge=1)
    plan_pro_price: Decimal = Field(default=Decimal("9.99"), ge=0)
    plan_team_price: Decimal = Field(default=Decimal("19.99"), ge=0)
    plan_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # RevenueCat sends this exact Authorization header value; unset refuses its webhook (503).
    revenuecat_webhook_authorization: SecretStr | None = None
    # "product_or_entitlement:tier" entries, comma-separated; the tier follows the last colon.
    revenuecat_product_tiers: Annotated[dict[str, PlanTier], NoDecode] = Field(
        default_factory=lambda: dict[str, PlanTier](pro="pro", team="team")
    )

    @field_validator(
        "google_client_ids", "cors_origins", "trusted_proxies", "allowed_hosts", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("prometheus_multiproc_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        # Checked here, as the client address resolver will read them: a host name refuses to start
        # instead of failing every request that carries X-Forwarded-For.
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network: entries are addresses or CIDRs "
                    "such as 10.0.0.0/8 or 127.0.0.1, comma-separated (host names are not resolved)"
                ) from None
        return value

    @field_validator("revenuecat_product_tiers", mode="before")
    @classmethod
    def _product_tiers(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [entry.strip().rpartition(":") for entry in value.split(",") if entry.strip()]
        if any(not key or not tier for key, _, tier in pairs):
            raise ValueError("entries are product_or_entitlement:tier, comma-separated")
        return {key.strip(): tier.strip() for key, _, tier in pairs}

    @model_validator(mode="after")
    def _ssh_profiles_max_for_every_tier(self) -> Settings:
        if self.ssh_profiles_max is not None:
            for tier in ("free", "pro", "team"):
                name = f"ssh_profiles_per_user_{tier}"
                if name not in self.model_fields_set:
                    setattr(self, name, self.ssh_profiles_max)
        return self

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT or self.testing

    @property
    def blocks_private_ssh_targets(self) -> bool:
        if self.ssh_block_private_targets is not None:
            return self.ssh_block_private_targets
        return not self.is_development

    @property
    def local_shell_allowed(self) -> bool:
        if self.allow_local_shell is not None:
            return self.allow_local_shell
        return self.is_development

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "devpocket.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def human_logs(self) -> bool:
        if self.log_format == "auto":
            return self.environment is Environment.DEVELOPMENT and not self.testing
        return self.log_format == "console"

    def jwt_signing_secret(self) -> str:
        """The HS* secret: configured, or (in development only) generated once into the data dir."""
        if self.jwt_secret_key is not None and not is_placeholder(self.jwt_secret_key):
            return self.jwt_secret_key.get_secret_value()
        if not self.is_development:
            state = "a placeholder" if self.jwt_secret_key is not None else "missing"
            raise ConfigurationError(
                f"JWT_SECRET_KEY is {state}: set it to at least {MIN_SECRET_LENGTH} random "
                "characters (for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return load_or_create_secret(self.data_dir / "jwt_secret_key")

    def encryption_keyring_text(self) -> str:
        """ENCRYPTION_KEY: configured, or (in development only) generated once into the data dir."""
        if self.encryption_key is not None and self.encryption_key.get_secret_value().strip():
            return self.encryption_key.get_secret_value()
        if not self.is_development:
            raise ConfigurationError(
                "ENCRYPTION_KEY is missing: set it to id:base64url-32-byte-key entries, the "
                "current key first (for example the output of `python -c 'from "
                "devpocket.ssh.secrets import generate_key_entry; print(generate_key_entry())'`)"
            )
        # Imported here: devpocket.ssh.secrets imports this module (ConfigurationError).
        from devpocket.ssh.secrets import DEV_KEYRING_FILE, load_or_create_keyring_file

        return load_or_create_keyring_file(self.data_dir / DEV_KEYRING_FILE)

    def check_startup(self) -> None:
        """Refuse to start with a configuration that cannot be served safely."""
        if self.jwt_algorithm.startswith("HS"):
            self.jwt_signing_secret()
        else:
            for name, path in (
                ("JWT_PRIVATE_KEY_FILE", self.jwt_private_key_file),
                ("JWT_PUBLIC_KEY_FILE", self.jwt_public_key_file),
            ):
                if path is None or not path.is_file():
                    raise ConfigurationError(
                        f"{name} must name a readable key file when "
                        f"JWT_ALGORITHM={self.jwt_algorithm}"
                    )
        # Parsed, not only present: a malformed key refuses to start instead of failing later.
        from devpocket.ssh.secrets import Keyring

        Keyring.parse(self.encryption_keyring_text())


def is_placeholder(secret: SecretStr) -> bool:
    value = secret.get_secret_value().strip()
    return len(value) < MIN_SECRET_LENGTH or value.lower() in PLACEHOLDER_SECRETS


def create_private_directory(path: Path) -> None:
    """Create ``path`` and any missing parent with mode 0700, readable by the owner only.

    The data directory holds the database, password hashes and secrets. A directory that exists
    keeps its mode: whoever made it chose who may read it.
    """
    missing = list(itertools.takewhile(lambda p: not p.exists(), [path, *path.parents]))
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another worker made it meanwhile
            directory.mkdir(mode=0o700)


def load_or_create_secret(path: Path, make: Callable[[], str] | None = None) -> str:
    """Read a generated secret, creating it with ``make`` (mode 0600) on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    create_private_directory(path.parent)
    value = make() if make is not None else secrets.token_urlsafe(48)
    try:
        with path.open("x", encoding="utf-8") as handle:
            path.chmod(0o600)
            handle.write(value)
    except FileExistsError:
        # Another worker created it first: use theirs so every worker agrees.
        return path.read_text(encoding="utf-8").strip()
    return value
