"""Server processes under test, and the throwaway PostgreSQL database and Redis prefix they use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from devpocket.settings import Settings
from devpocket.ssh.secrets import generate_key_entry

BENCH_DIR = Path(__file__).parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class ServerError(Exception):
    """A server did not start, or died while under load."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ).close()
    except OSError:
        return False
    return True


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ServerError(f"{self.name}: no VmRSS in /proc/{self.process.pid}/status")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerError(
                f"{self.name} exited with {self.process.returncode}{log_tail(self.log_path)}"
            )

    def stop(self) -> int | None:
        """Ask for a graceful shutdown (SIGINT, as Ctrl-C), then kill; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return f"; last lines of {path}:\n" + "\n".join(tail)


@contextlib.contextmanager
def serving(
    name: str, argv: list[str], env: dict[str, str], log_path: Path, probe: str
) -> Iterator[Server]:
    """Start a server process, wait until ``probe`` answers 200, stop it afterwards."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, base_url, log_path)
    try:
        wait_until_up(server, probe)
        yield server
    finally:
        server.stop()


def wait_until_up(server: Server, probe: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + probe, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise ServerError(f"{server.name} did not answer {probe} within {START_TIMEOUT_S:.0f} s")


def bare_command() -> list[str]:
    return [sys.executable, str(BENCH_DIR / "bare_app.py")]


def devpocket_command() -> list[str]:
    script = Path(sys.executable).with_name("devpocket")
    if script.exists():
        return [str(script), "serve", "--workers", "1"]
    return [sys.executable, "-m", "devpocket", "serve", "--workers", "1"]


def devpocket_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The runner's environment without any DevPocket setting, then the benchmark's own.

    Production mode with a real secret, default INFO level, JSON logs: what a deployment pays.
    """
    own = {name.upper() for name in Settings.model_fields} | {"DEVPOCKET_DATA_DIR"}
    env = {key: value for key, value in os.environ.items() if key.upper() not in own}
    env.update(
        DEVPOCKET_DATA_DIR=str(data_dir),
        ENVIRONMENT="production",
        JWT_SECRET_KEY=secrets.token_urlsafe(48),
        ENCRYPTION_KEY=generate_key_entry(),
        RATE_LIMIT_ENABLED="false",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database, dropped afterwards; yields its URL."""
    name = f"devpocket_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of the run's own; its keys are deleted afterwards."""
    from redis import Redis

    prefix = f"devpocket-bench-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = Redis.from_url(REDIS_URL, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
