"""Graceful shutdown: a request in flight when the server is told to stop still gets its answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from tests.openrouter import GOOD_KEY, FakeResponse, serving_openrouter

EXPLANATION = json.dumps({"summary": "Lists files.", "parts": []})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _wait_until_up(base: str, server: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(150):
            assert server.returncode is None, "the server exited while starting"
            try:
                await client.get(f"{base}/health/live", timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError("the server did not start")


async def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    async with serving_openrouter() as fake:
        fake.default_completion(EXPLANATION)
        # The upstream takes a second: the request is still in flight when the signal comes.
        fake.script("/chat/completions", FakeResponse(delay=1.0))
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "JWT_"))},
            "DEVPOCKET_DATA_DIR": str(tmp_path),
            "OPENROUTER_API_BASE_URL": fake.url,
            "LOG_LEVEL": "WARNING",
        }
        server = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "devpocket", "serve", "--port", str(port)),
            *("--graceful-timeout", "10"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_up(base, server)
            async with httpx.AsyncClient(base_url=base, timeout=15) as client:
                account = {
                    "email": "s@example.com",
                    "username": "shutdown",
                    "password": "Shut-d0wn-pass",
                }
                token = (await client.post("/api/v1/auth/register", json=account)).json()["data"]
                headers = {
                    "Authorization": f"Bearer {token['access_token']}",
                    "X-OpenRouter-Key": GOOD_KEY,
                }
                call = asyncio.create_task(
                    client.post(
                        "/api/v1/ai/explain-command", json={"command": "ls"}, headers=headers
                    )
                )
                await asyncio.sleep(0.4)
                server.send_signal(signal.SIGTERM)
                response = await call
            assert response.status_code == 200
            assert response.json()["data"]["summary"] == "Lists files."
            # uvicorn finishes its shutdown, then exits by the signal it was given.
            assert await asyncio.wait_for(server.wait(), 15) in {0, -signal.SIGTERM}
        finally:
            if server.returncode is None:
                server.kill()
                await asyncio.wait_for(server.wait(), 10)
