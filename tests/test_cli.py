"""The `devpocket` command."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devpocket.cli import build_parser, main, metrics_directory
from devpocket.ssh.secrets import generate_key_entry
from tests.conftest import IsolatedSettings


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


def _environment(env: dict[str, str]) -> dict[str, str]:
    # A real process: the CLI is the one reader of a real environment.
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
    }
    return {**clean, **env}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devpocket", *args],
        env=_environment(env),
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


def test_migrate_keeps_a_new_data_dir_and_its_files_to_the_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = _run(["migrate"], {"DEVPOCKET_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in data_dir.iterdir()}
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert files["devpocket.sqlite3"] == 0o600
    assert set(files.values()) == {0o600}


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


def test_serve_exits_when_its_port_is_taken(tmp_path: Path) -> None:
    """Started, then unable to listen: shutdown cancels the first queries of the background jobs.

    The process must still exit; with aiosqlite 0.22 it often waited for ever (ADR 6).
    """
    env = {"DEVPOCKET_DATA_DIR": str(tmp_path), "LOG_FORMAT": "json"}
    _run(["migrate"], env)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for _ in range(3):  # it did not hang every time
            done = subprocess.run(
                [sys.executable, "-m", "devpocket", "serve", "--port", str(port)],
                env=_environment(env),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode != 0
            assert "address already in use" in done.stdout + done.stderr


def _serve_until_started(env: dict[str, str]) -> str:
    """Run `devpocket serve` on loopback until it has started (or failed to), then stop it.

    Returns what it logged.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "devpocket", "serve", "--port", str(port)],
        env=_environment({"LOG_FORMAT": "json", **env}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(60, server.kill)
    watchdog.start()
    log: list[str] = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            log.append(line)
            if "Application startup complete" in line:
                break
    finally:
        watchdog.cancel()
        server.terminate()
        server.communicate(timeout=30)
    return "".join(log)


def test_serve_creates_a_missing_metrics_dir_with_one_worker(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    log = _serve_until_started(
        {"DEVPOCKET_DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    )
    assert "Application startup complete" in log, log
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o700


def test_serve_drops_earlier_metrics_files_and_keeps_other_files(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    stale = [metrics / "counter_999999999.db", metrics / "gauge_livesum_999999999.db"]
    kept = [metrics / "devpocket.db", metrics / "notes.txt"]
    for path in [*stale, *kept]:
        path.write_text("left by an earlier run")
    log = _serve_until_started(
        {"DEVPOCKET_DATA_DIR": str(tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    )
    assert "Application startup complete" in log, log
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "left by an earlier run" for path in kept)


@pytest.mark.parametrize(
    ("configured", "workers", "expected"),
    [
        (None, 1, None),
        (None, 2, "data/prometheus"),
        ("metrics", 1, "metrics"),
        ("metrics", 4, "metrics"),
    ],
)
def test_metrics_dir_is_the_configured_one_or_in_the_data_dir_with_several_workers(
    tmp_path: Path, configured: str | None, workers: int, expected: str | None
) -> None:
    settings = IsolatedSettings(
        data_dir=tmp_path / "data",
        prometheus_multiproc_dir=None if configured is None else tmp_path / configured,
    )
    found = metrics_directory(settings, workers)
    assert found == (None if expected is None else tmp_path / expected)
