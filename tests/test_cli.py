"""The `devpocket` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devpocket.cli import build_parser, main
from devpocket.ssh.secrets import generate_key_entry


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["openapi"]])
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args([*command, "--help"])
    assert raised.value.code == 0
    assert "usage: devpocket" in capsys.readouterr().out


def test_openapi_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "/api/v1/auth/login" in schema["paths"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A real process: the CLI is the one reader of a real environment.
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "devpocket", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_production_without_secret_naming_the_variable(tmp_path: Path) -> None:
    result = _run(["serve"], {"ENVIRONMENT": "production", "DEVPOCKET_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "JWT_SECRET_KEY" in result.stderr


def test_serve_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    result = _run(["serve", "--workers", "2"], {"DEVPOCKET_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_migrate_builds_the_default_sqlite_database(tmp_path: Path) -> None:
    result = _run(["migrate"], {"DEVPOCKET_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "devpocket.sqlite3").exists()


def test_rotate_encryption_key_in_development(tmp_path: Path) -> None:
    env = {"DEVPOCKET_DATA_DIR": str(tmp_path)}
    assert _run(["migrate"], env).returncode == 0
    first = (
        (tmp_path / "encryption_keys").read_text()
        if (tmp_path / "encryption_keys").exists()
        else ""
    )
    result = _run(["rotate-encryption-key", "--generate"], env)
    assert result.returncode == 0, result.stderr
    assert "current key:" in result.stdout
    keyring = (tmp_path / "encryption_keys").read_text()
    assert keyring.count(":") >= 2  # the new key first, the earlier one kept
    assert keyring != first


def test_rotate_refuses_to_generate_over_a_configured_key(tmp_path: Path) -> None:
    env = {"DEVPOCKET_DATA_DIR": str(tmp_path), "ENCRYPTION_KEY": generate_key_entry()}
    result = _run(["rotate-encryption-key", "--generate"], env)
    assert result.returncode != 0
    assert "ENCRYPTION_KEY" in result.stderr
