"""SSH vault benchmarks: connection tests against a real loopback sshd, and listing 500 profiles.

    python bench/ssh.py [--quick] [--output reports/bench-ssh.json]

One `devpocket serve` process on SQLite (production mode, as bench/run.py runs it). Measures:
- `POST /ssh/profiles/{id}/test` with key authentication to a loopback OpenSSH sshd started for
  the run (needs root and `/usr/sbin/sshd`, as the tests do): median and p99 of 50 tests;
- `GET /ssh/profiles` with 500 profiles: median and p99 of 100 requests (one query; no N+1).
Fails (exit 1) on an unexpected answer, not on timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import server  # noqa: E402
from bench.report import percentile  # noqa: E402
from tests.sshd import running_sshd, sshd_unavailable_reason  # noqa: E402


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "count": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


def _ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise server.ServerError(f"{response.request.url} answered {response.status_code}")
    return response.json()["data"]


def _account(client: httpx.Client) -> dict[str, str]:
    body = {"email": "bench@example.com", "username": "bench", "password": "bench-Passw0rd-x"}
    token = _ok(client.post("/api/v1/auth/register", json=body), 201)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _connection_tests(client: httpx.Client, headers: dict[str, str], count: int) -> dict[str, Any]:
    with running_sshd() as sshd:
        key = {"name": "bench", "private_key": sshd.client_key}
        key_id = _ok(client.post("/api/v1/ssh/keys", json=key, headers=headers), 201)["id"]
        profile = {
            "name": "loopback", "host": sshd.host, "port": sshd.port,
            "username": sshd.username, "auth_type": "KEY", "key_id": key_id,
        }  # fmt: skip
        profile_id = _ok(client.post("/api/v1/ssh/profiles", json=profile, headers=headers), 201)[
            "id"
        ]
        wall: list[float] = []
        reported: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            result = _ok(client.post(f"/api/v1/ssh/profiles/{profile_id}/test", headers=headers))
            wall.append((time.perf_counter() - started) * 1000)
            if not result["success"]:
                raise server.ServerError(f"connection test failed: {result['error']}")
            reported.append(float(result["response_time"]))
    return {"request": _summary(wall), "ssh_response_time": _summary(reported)}


def _profile_list(
    client: httpx.Client, headers: dict[str, str], profiles: int, requests: int
) -> dict[str, Any]:
    for n in range(profiles):
        body = {"name": f"host-{n:04d}", "host": f"10.0.{n // 250}.{n % 250}", "username": "ops",
                "password": "c2VjcmV0", "tags": ["bench", f"group-{n % 10}"]}  # fmt: skip
        _ok(client.post("/api/v1/ssh/profiles", json=body, headers=headers), 201)
    samples: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        listing = _ok(client.get("/api/v1/ssh/profiles", headers=headers))
        samples.append((time.perf_counter() - started) * 1000)
        if listing["total"] < profiles:
            raise server.ServerError(f"listed {listing['total']} of {profiles} profiles")
    return {"profiles": listing["total"], **_summary(samples)}


def _measure(base_url: str, tests: int, profiles: int, lists: int) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        headers = _account(client)
        return {
            "connection_test_key_auth": _connection_tests(client, headers, tests),
            "profile_list": _profile_list(client, headers, profiles, lists),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 tests, 100 profiles")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench-ssh.json")
    args = parser.parse_args()
    reason = sshd_unavailable_reason()
    if reason is not None:
        print(f"bench/ssh.py: {reason}", file=sys.stderr)
        return 1
    tests, profiles, lists = (10, 100, 20) if args.quick else (50, 500, 100)
    with tempfile.TemporaryDirectory(prefix="devpocket-bench-ssh-") as tmp:
        data_dir = Path(tmp)
        # The sshd is on loopback, which production mode refuses as a target by default.
        env = server.devpocket_environment(
            data_dir, SSH_PROFILES_MAX="10000", SSH_BLOCK_PRIVATE_TARGETS="false"
        )
        log = ROOT / "reports" / "bench-ssh-server.log"
        with (
            server.serving(
                "devpocket", server.devpocket_command(), env, log, "/health/live"
            ) as srv,
            httpx.Client(base_url=srv.base_url, timeout=30) as client,
        ):
            headers = _account(client)
            report = {
                "connection_test_key_auth": _connection_tests(client, headers, tests),
                "profile_list": _profile_list(client, headers, profiles, lists),
            }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    test = report["connection_test_key_auth"]["request"]
    listing = report["profile_list"]
    print(
        f"POST /ssh/profiles/{{id}}/test (key auth, loopback sshd): {test['count']} tests, "
        f"median {test['median_ms']} ms, p99 {test['p99_ms']} ms"
    )
    print(
        f"GET /ssh/profiles with {listing['profiles']} profiles: {listing['count']} requests, "
        f"median {listing['median_ms']} ms, p99 {listing['p99_ms']} ms"
    )
    print(f"report: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
