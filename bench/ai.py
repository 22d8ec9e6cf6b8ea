"""AI help benchmarks: the server's own cost per AI call, and a cache hit.

    python bench/ai.py [--quick] [--output reports/bench-ai.json]

One `devpocket serve` process on SQLite (production mode, as bench/run.py runs it) talking to the
tests' fake OpenRouter on loopback, which answers at once: the latency of a call is then the
server's overhead (validation, quota, the HTTP round trip to the upstream, parsing, risk
classification, caching). Measures `POST /ai/explain-command` with a new command each time (no
cache) and with one repeated command (a cache hit): median and p99 over 200 calls each. Fails
(exit 1) on an unexpected answer, not on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import server  # noqa: E402 - bench/ is the script's directory, as for bench/run.py
from tests.openrouter import GOOD_KEY, FakeOpenRouter, serving_openrouter  # noqa: E402

EXPLANATION = json.dumps({"summary": "Lists files.", "parts": [{"part": "ls", "meaning": "list"}]})


@contextmanager
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    """The fake upstream on its own event loop, in a thread, for the length of the run."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, FakeOpenRouter] = {}
    loop = asyncio.new_event_loop()

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with serving_openrouter() as fake:
            fake.default_completion(EXPLANATION)
            holder["fake"] = fake
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield holder["fake"]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(samples),
        "median_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 2),
    }


def _call(client: httpx.Client, headers: dict[str, str], command: str) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.post("/api/v1/ai/explain-command", json={"command": command}, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise server.ServerError(f"explain-command answered {response.status_code}")
    return elapsed, response.json()["data"]


def _measure(base_url: str, calls: int) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        body = {"email": "ai@example.com", "username": "aibench", "password": "bench-Passw0rd-x"}
        answer = client.post("/api/v1/auth/register", json=body)
        token = answer.json()["data"]["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-OpenRouter-Key": GOOD_KEY}
        misses = [_call(client, headers, f"ls -la /srv/{n}")[0] for n in range(calls)]
        _call(client, headers, "ls -la")
        hits: list[float] = []
        for _ in range(calls):
            elapsed, data = _call(client, headers, "ls -la")
            if not data["cached"]:
                raise server.ServerError("a repeated request was not answered from the cache")
            hits.append(elapsed)
    return {"uncached_call": _summary(misses), "cache_hit": _summary(hits)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 calls each")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench-ai.json")
    args = parser.parse_args()
    calls = 30 if args.quick else 200
    with (
        tempfile.TemporaryDirectory(prefix="devpocket-bench-ai-") as tmp,
        fake_openrouter() as fake,
    ):
        env = server.devpocket_environment(
            Path(tmp), OPENROUTER_API_BASE_URL=fake.url, AI_REQUESTS_PER_MONTH_FREE="-1"
        )
        log = ROOT / "reports" / "bench-ai-server.log"
        command = server.devpocket_command()
        with server.serving("devpocket", command, env, log, "/health/live") as srv:
            report = _measure(srv.base_url, calls)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, label in (("uncached_call", "uncached (fake upstream)"), ("cache_hit", "cache hit")):
        row = report[name]
        print(f"POST /ai/explain-command, {label}: {row['count']} calls, "
              f"median {row['median_ms']} ms, p99 {row['p99_ms']} ms")  # fmt: skip
    print(f"report: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
