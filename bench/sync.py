"""Sync benchmarks on PostgreSQL + Redis: catching up the feed, pushing a batch, real-time notices.

    python bench/sync.py [--quick] [--output reports/bench-sync.json]

Two `devpocket serve` processes (production mode, one worker each, as bench/run.py runs them)
share a throwaway PostgreSQL database and a Redis key prefix. Measures:
- catch-up: a device at cursor 0 reads a feed of 10,000 changes with `limit=500` (20 pages), five
  times: median and worst total time;
- push: `POST /sync/push` with 500 changes in one batch, five times each kind: new profiles, and
  updates of 500 profiles based on a version another device has changed since (the merge path);
- notices: a device with `/ws/sync` open on server B, another pushing one change at a time on
  server A: time from sending the push to the notice arriving from B, median and p99 over 200;
  also the push's own round trip, and the notice's arrival relative to the push's answer (the
  notice is published after commit, before the answer is sent: what Redis adds shows there).
Fails (exit 1) on an unexpected answer or a missed notice, not on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import server  # noqa: E402

PASSWORD = "bench-Passw0rd-x"  # noqa: S105 - a throwaway account on a throwaway database
EPOCH = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Plan:
    feed: int
    batch: int
    rounds: int
    notices: int


@dataclass
class Device:
    http: httpx.AsyncClient
    headers: dict[str, str]
    device_id: str
    token: str


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "count": len(samples),
        "median_ms": _ms(statistics.median(ordered)),
        "p99_ms": _ms(p99),
        "max_ms": _ms(ordered[-1]),
    }


def _data(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise server.ServerError(f"{response.request.url} answered {response.status_code}")
    return response.json()["data"]


async def _login(http: httpx.AsyncClient, email: str, name: str) -> Device:
    device_id = str(uuid.uuid4())
    body = {"email": email, "password": PASSWORD, "device_id": device_id, "device_name": name}
    token = _data(await http.post("/api/v1/auth/login", json=body))["access_token"]
    return Device(http, {"Authorization": f"Bearer {token}"}, device_id, token)


def _profile_change(profile_id: str, base: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "change_id": str(uuid.uuid4()),
        "entity": "ssh_profile",
        "entity_id": profile_id,
        "op": "upsert",
        "base_version": base,
        "changed_at": EPOCH,
        "data": fields,
    }


async def _push(device: Device, changes: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    body = {"device_id": device.device_id, "changes": changes}
    started = time.perf_counter()
    answer = _data(await device.http.post("/api/v1/sync/push", json=body, headers=device.headers))
    elapsed = time.perf_counter() - started
    if any(result["status"] == "rejected" for result in answer["results"]):
        raise server.ServerError(f"a pushed change was rejected: {answer['results'][0]}")
    return elapsed, answer


def _new_profiles(count: int) -> list[dict[str, Any]]:
    return [
        _profile_change(
            str(uuid.uuid4()),
            0,
            {"name": f"host-{n}", "host": f"h{n}.example.com", "username": "deploy"},
        )
        for n in range(count)
    ]


async def _pushes(phone: Device, tablet: Device, plan: Plan) -> dict[str, Any]:
    """Batches of new profiles; then stale updates of them, after another device changed each."""
    creates, updates, made = [], [], []
    for _ in range(plan.rounds):
        batch = _new_profiles(plan.batch)
        elapsed, answer = await _push(phone, batch)
        creates.append(elapsed)
        made.append((batch, answer["cursor"]))
    for port, (batch, base) in enumerate(made, start=2000):
        ids = [change["entity_id"] for change in batch]
        await _push(tablet, [_profile_change(i, base, {"color": "#00f"}) for i in ids])
        stale = [_profile_change(i, base, {"port": port, "color": "#f00"}) for i in ids]
        elapsed, answer = await _push(phone, stale)
        if {r["status"] for r in answer["results"]} != {"conflict_resolved"}:
            raise server.ServerError("stale updates were not merged as conflicts")
        updates.append(elapsed)
    return {"new_profiles": _summary(creates), "stale_updates_merged": _summary(updates)}


async def _fill(device: Device, total: int, batch: int) -> None:
    """Updates of a few profiles until the feed holds ``total`` changes."""
    created = _new_profiles(20)
    _, answer = await _push(device, created)
    profiles = [change["entity_id"] for change in created]
    written, port = answer["cursor"], 1
    while written < total:
        size = min(batch, total - written)
        changes = [
            _profile_change(profiles[n % len(profiles)], written, {"port": port + n})
            for n in range(size)
        ]
        written = (await _push(device, changes))[1]["cursor"]
        port += size


async def _catch_up(device: Device, total: int, rounds: int) -> dict[str, Any]:
    samples = []
    for _ in range(rounds):
        cursor, seen, pages = 0, 0, 0
        started = time.perf_counter()
        while True:
            params = {"since": cursor, "limit": 500}
            page = _data(
                await device.http.get("/api/v1/sync/changes", params=params, headers=device.headers)
            )
            seen, cursor, pages = seen + len(page["changes"]), page["cursor"], pages + 1
            if not page["has_more"]:
                break
        samples.append(time.perf_counter() - started)
        if seen < total:
            raise server.ServerError(f"the feed gave {seen} changes, expected {total}")
    return {"changes": seen, "pages": pages, **_summary(samples)}


async def _notices(pusher: Device, listener: Device, base_url: str, count: int) -> dict[str, Any]:
    """Round trips of one pushed change on server A to the notice from server B."""
    url = base_url.replace("http://", "ws://") + f"/ws/sync?token={listener.token}"
    latencies, trips, lags = [], [], []
    async with connect(url) as socket_:
        hello = json.loads(await asyncio.wait_for(socket_.recv(), 10))
        cursor = hello["data"]["cursor"]
        profile = _new_profiles(1)
        await _push(pusher, profile)
        cursor = json.loads(await asyncio.wait_for(socket_.recv(), 5))["data"]["cursor"]
        for n in range(count):
            change = _profile_change(profile[0]["entity_id"], cursor, {"port": 1 + n})
            started = time.perf_counter()
            push = asyncio.create_task(_push(pusher, [change]))
            frame = json.loads(await asyncio.wait_for(socket_.recv(), 5))
            noticed = time.perf_counter() - started
            trip = (await push)[0]
            latencies.append(noticed)
            trips.append(trip)
            lags.append(noticed - trip)
            if frame["type"] != "sync" or frame["data"]["cursor"] <= cursor:
                raise server.ServerError(f"unexpected frame {frame}")
            cursor = frame["data"]["cursor"]
    return {
        "push_to_notice": _summary(latencies),
        "push_round_trip": _summary(trips),
        # Negative: the other process's socket heard before the pushing device had its answer.
        "notice_after_answer": _summary(lags),
    }


async def _measure(base_a: str, base_b: str, plan: Plan) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=base_a, timeout=120) as a,
        httpx.AsyncClient(base_url=base_b, timeout=120) as b,
    ):
        email = "sync@example.com"
        body = {"email": email, "username": "syncbench", "password": PASSWORD}
        _data(await a.post("/api/v1/auth/register", json=body), 201)
        phone, tablet = await _login(a, email, "phone"), await _login(a, email, "tablet")
        laptop = await _login(b, email, "laptop")
        pushes = await _pushes(phone, tablet, plan)
        await _fill(phone, plan.feed, 1000)
        catch_up = await _catch_up(laptop, plan.feed, plan.rounds)
        notices = await _notices(phone, laptop, base_b, plan.notices)
    return {"push": {"batch": plan.batch, **pushes}, "catch_up": catch_up, "notices": notices}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 changes, 100-change batches")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench-sync.json")
    args = parser.parse_args()
    plan = Plan(2_000, 100, 3, 30) if args.quick else Plan(10_000, 500, 5, 200)
    missing = [
        name
        for name, url, port in (
            ("PostgreSQL", server.POSTGRES_ADMIN_URL, 5432),
            ("Redis", server.REDIS_URL, 6379),
        )
        if not server.reachable(url, port)
    ]
    if missing:
        print(f"needs {' and '.join(missing)}: not reachable", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="devpocket-bench-sync-") as tmp,
        server.postgres_database() as database_url,
        server.redis_prefix() as prefix,
    ):
        env = server.devpocket_environment(
            Path(tmp),
            DATABASE_URL=database_url,
            REDIS_URL=server.REDIS_URL,
            REDIS_KEY_PREFIX=prefix,
            SYNC_DEVICES_PER_USER_FREE="-1",  # one user, many simulated devices
            SSH_PROFILES_PER_USER_FREE="-1",
        )
        logs = ROOT / "reports"
        command = server.devpocket_command()
        with (
            server.serving("sync-a", command, env, logs / "bench-sync-a.log", "/health/live") as a,
            server.serving("sync-b", command, env, logs / "bench-sync-b.log", "/health/live") as b,
        ):
            report = asyncio.run(_measure(a.base_url, b.base_url, plan))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print(report)
    print(f"report: {args.output}")
    return 0


def _print(report: dict[str, Any]) -> None:
    catch_up, push, notices = report["catch_up"], report["push"], report["notices"]
    print(
        f"catch-up of {catch_up['changes']} changes in {catch_up['pages']} pages: "
        f"median {catch_up['median_ms']} ms, worst {catch_up['max_ms']} ms"
    )
    for kind in ("new_profiles", "stale_updates_merged"):
        row = push[kind]
        print(
            f"push of {push['batch']} changes ({kind}): median {row['median_ms']} ms, "
            f"worst {row['max_ms']} ms"
        )
    for kind in ("push_to_notice", "push_round_trip", "notice_after_answer"):
        row = notices[kind]
        print(
            f"{kind} across processes: {row['count']} samples, median {row['median_ms']} ms, "
            f"p99 {row['p99_ms']} ms"
        )


if __name__ == "__main__":
    raise SystemExit(main())
