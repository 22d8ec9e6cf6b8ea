"""Prometheus metrics after real traffic, the optional token, and several workers summed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SettingsFactory, serving
from tests.helpers import error, register


def _value(text: str, name: str, **labels: str) -> float:
    """The sample's value, or 0 when it has not been recorded yet."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$" if labels else rf"^{name} (\S+)$"
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_requests_are_counted_by_route_template_and_status(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    account = await register(client)
    await client.get("/api/v1/auth/me", headers=account.headers)
    await client.get("/api/v1/no/such/route")
    await client.post("/api/v1/auth/login", json={"email": account.email, "password": "Wrong-1234"})
    after = (await client.get("/metrics")).text
    me = {"method": "GET", "route": "/api/v1/auth/me", "status": "200"}
    assert _value(after, "devpocket_http_requests_total", **me) == (
        _value(before, "devpocket_http_requests_total", **me) + 1
    )
    missing = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value(after, "devpocket_http_requests_total", **missing) >= 1
    failures = {"reason": "invalid_credentials"}
    assert _value(after, "devpocket_login_failures_total", **failures) == (
        _value(before, "devpocket_login_failures_total", **failures) + 1
    )
    latency = {"method": "GET", "route": "/api/v1/auth/me"}
    assert _value(after, "devpocket_http_request_duration_seconds_count", **latency) >= 1
    assert "devpocket_http_requests_in_flight" in after
    assert 'devpocket_db_pool_connections{state="idle"}' in after


async def test_metrics_token_is_required_when_configured(settings_factory: SettingsFactory) -> None:
    token = "metrics-" + "t" * 32
    async with serving(settings_factory(metrics_token=token)) as (_, client):
        error(await client.get("/metrics"), 401, "metrics_token_required")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        error(wrong, 401, "metrics_token_required")
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert "devpocket_http_requests_total" in ok.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_several_workers_report_one_sum(
    tmp_path: Path, redis_server_url: str, redis_prefix: str
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "JWT_"))},
        "DEVPOCKET_DATA_DIR": str(tmp_path),
        "REDIS_URL": redis_server_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "devpocket", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        # New connections each time, so both workers answer some of them.
        for _ in range(40):
            assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
        text = httpx.get(f"{base}/metrics", timeout=5).text
        live = {"method": "GET", "route": "/health/live", "status": "200"}
        assert _value(text, "devpocket_http_requests_total", **live) >= 40
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "prometheus").is_dir()


@pytest.mark.parametrize("path", ["/metrics", "/metrics/"])
async def test_metrics_are_plain_text(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
