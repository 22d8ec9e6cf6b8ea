"""Benchmark DevPocket with wrk: one server process, first on SQLite, then on PostgreSQL + Redis.

    python bench/run.py [--quick] [--backend sqlite|postgres ...] [--output reports/bench.json]

Measures a constant FastAPI endpoint (the baseline), /health/live, /health/ready, /auth/me,
logins with /auth/me alongside, and the server's resident memory. Prints a table and writes a
JSON report. Missed targets do not fail the run (timings are noisy); socket errors, non-2xx
answers or a server that does not start or dies do (exit 1). BENCH_DURATION sets the seconds per
run (default 10, 2 with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import load
import report
import server

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    duration_s: int
    warmup_requests: int  # /auth/me requests before the first memory reading after warm-up
    memory_requests: int  # /auth/me requests before the last memory reading
    quick: bool


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    token: str


def make_plan(args: argparse.Namespace) -> Plan:
    default = 2 if args.quick else 10
    duration = int(os.environ.get("BENCH_DURATION") or default)
    if args.quick:
        return Plan(max(1, duration), 500, 2_000, quick=True)
    return Plan(max(1, duration), 10_000, 100_000, quick=False)


def register(base_url: str) -> Account:
    """Create an account, then check that login and /auth/me work before loading them."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    email, password = f"{name}@example.com", f"Bench-{secrets.token_urlsafe(12)}"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        created = client.post(
            "/api/v1/auth/register", json={"email": email, "username": name, "password": password}
        )
        if created.status_code != 201:
            raise server.ServerError(f"register answered {created.status_code}: {created.text}")
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        token = (
            login.json().get("data", {}).get("access_token") if login.status_code == 200 else None
        )
        if not token:
            raise server.ServerError(f"login answered {login.status_code}: {login.text}")
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        if me.status_code != 200:
            raise server.ServerError(f"/auth/me answered {me.status_code}: {me.text}")
    return Account(email, password, token)


def memory_profile(srv: server.Server, me: load.Load, plan: Plan, wrk: str) -> dict[str, Any]:
    """RSS after warm-up and after the whole series of /auth/me requests (wrk in chunks)."""
    sent, failed, rate = 0, 0, 0.0
    marks: dict[str, dict[str, int]] = {}
    for mark, target in (
        ("after_warmup", plan.warmup_requests),
        ("after_total", plan.memory_requests),
    ):
        while sent < target:
            seconds = (target - sent) / rate * 1.05 if rate else 1.0
            result = load.run(replace(me, duration_s=min(10, max(1, round(seconds)))), wrk)
            sent, failed, rate = sent + result.requests, failed + result.failed_requests, result.rps
            srv.check_alive()
        marks[mark] = {"requests": sent, "rss_kib": srv.rss_kib()}
    growth = marks["after_total"]["rss_kib"] - marks["after_warmup"]["rss_kib"]
    return {**marks, "growth_after_warmup_kib": growth, "failed_requests": failed}


def run_loads(srv: server.Server, account: Account, plan: Plan, wrk: str) -> dict[str, load.Result]:
    base, seconds = srv.base_url, plan.duration_s
    bearer = {"Authorization": f"Bearer {account.token}"}
    results: dict[str, load.Result] = {}
    for name, path, headers in (
        ("health_live", "/health/live", {}),
        ("health_ready", "/health/ready", {}),
        ("auth_me", "/api/v1/auth/me", bearer),
    ):
        results[name] = load.run(load.Load(name, base + path, 16, 2, seconds, headers=headers), wrk)
        srv.check_alive()
    credentials = json.dumps({"email": account.email, "password": account.password})
    # Logins alone give the login rate; then logins again, flat out, with /auth/me alongside
    # for its latency while the server hashes (both loads share the machine's two cores).
    results["auth_login"] = load.run(
        load.Load("auth_login", base + "/api/v1/auth/login", 8, 2, seconds, "POST", credentials),
        wrk,
    )
    srv.check_alive()
    logins = load.Running(
        load.Load(
            "auth_login_with_me", base + "/api/v1/auth/login", 8, 2, seconds, "POST", credentials
        ),
        wrk,
    )
    alongside = load.Running(
        load.Load("auth_me_during_logins", base + "/api/v1/auth/me", 4, 1, seconds, headers=bearer),
        wrk,
    )
    results["auth_login_with_me"], results["auth_me_during_logins"] = (
        logins.wait(),
        alongside.wait(),
    )
    srv.check_alive()
    return results


def summarize_log(path: Path, keep: Path) -> dict[str, Any]:
    """Count what the server logged; keep the last lines next to the report."""
    lines = errors = 0
    tail: deque[str] = deque(maxlen=200)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            lines += 1
            if '"level": "error"' in line or '"level": "critical"' in line:
                errors += 1
            tail.append(line)
    keep.write_text("".join(tail), encoding="utf-8")
    return {"lines": lines, "bytes": path.stat().st_size, "error_lines": errors, "tail": str(keep)}


def bench_devpocket(
    name: str, env: dict[str, str], plan: Plan, wrk: str, work: Path
) -> report.BackendReport:
    result = report.BackendReport(name)
    log_path = work / f"{name}-server.log"
    print(f"\n== {name}: devpocket serve (1 worker), {plan.duration_s} s per run", flush=True)
    with server.serving(name, server.devpocket_command(), env, log_path, "/health/live") as srv:
        after_start = srv.rss_kib()
        account = register(srv.base_url)
        bearer = {"Authorization": f"Bearer {account.token}"}
        me = load.Load("memory", srv.base_url + "/api/v1/auth/me", 16, headers=bearer)
        result.memory = {"after_start_kib": after_start, **memory_profile(srv, me, plan, wrk)}
        result.runs = run_loads(srv, account, plan, wrk)
        result.memory["after_all_runs_kib"] = srv.rss_kib()
    result.server_log = summarize_log(log_path, ROOT / "reports" / f"bench-server-{name}.log")
    return result


def bench_backend(name: str, plan: Plan, wrk: str, work: Path) -> report.BackendReport:
    data_dir = work / f"{name}-data"
    if name == "sqlite":
        return bench_devpocket(name, server.devpocket_environment(data_dir), plan, wrk, work)
    missing = [
        what
        for what, url, port in (
            ("PostgreSQL", server.POSTGRES_ADMIN_URL, 5432),
            ("Redis", server.REDIS_URL, 6379),
        )
        if not server.reachable(url, port)
    ]
    if missing:
        reason = " and ".join(missing) + " not reachable"
        print(f"\n!! {name}: skipped, {reason}", flush=True)
        return report.BackendReport(name, skipped=reason)
    with server.postgres_database() as database_url, server.redis_prefix() as prefix:
        env = server.devpocket_environment(
            data_dir, DATABASE_URL=database_url, REDIS_URL=server.REDIS_URL, REDIS_KEY_PREFIX=prefix
        )
        return bench_devpocket(name, env, plan, wrk, work)


def bench_bare(plan: Plan, wrk: str, work: Path) -> load.Result:
    print(f"== baseline: bench/bare_app.py (1 worker), {plan.duration_s} s", flush=True)
    env = {**os.environ}
    with server.serving("bare", server.bare_command(), env, work / "bare.log", "/bare") as srv:
        return load.run(load.Load("bare", srv.base_url + "/bare", 16, 2, plan.duration_s), wrk)


def problems_of(bare: load.Result | None, backends: list[report.BackendReport]) -> list[str]:
    """Failed requests anywhere: socket errors, timeouts, non-2xx answers."""
    labelled = [("baseline", bare)] if bare else []
    problems = []
    for backend in backends:
        labelled += [(backend.name, result) for result in backend.runs.values()]
        if failed := backend.memory.get("failed_requests"):
            problems.append(f"{backend.name} memory: {failed} failed requests")
    problems += [
        f"{name} {result.name}: {result.failed_requests} failed requests {result.errors}"
        for name, result in labelled
        if result.failed_requests
    ]
    return problems


def metadata(plan: Plan, wrk: str, started: float) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
    return {
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "quick": plan.quick,
        "duration_per_run_s": plan.duration_s,
        "memory_requests": [plan.warmup_requests, plan.memory_requests],
        "commit": commit or None,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "wrk": version.splitlines()[0] if version else None,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (2 s), a smoke test")
    parser.add_argument(
        "--backend",
        action="append",
        choices=("sqlite", "postgres"),
        help="repeatable; default both",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench.json")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan, started = make_plan(args), time.monotonic()
    wrk = load.find_wrk()
    (ROOT / "reports").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="devpocket-bench-"))
    bare: load.Result | None = None
    backends: list[report.BackendReport] = []
    failure = None
    try:
        bare = bench_bare(plan, wrk, work)
        for name in args.backend or ["sqlite", "postgres"]:
            backends.append(bench_backend(name, plan, wrk, work))
            backends[-1].checks = (
                report.evaluate(backends[-1], bare) if not backends[-1].skipped else []
            )
    except (server.ServerError, load.LoadError, httpx.HTTPError, OSError) as error:
        failure = f"{type(error).__name__}: {error}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish(args.output, plan, wrk, started, bare, backends, failure)


def finish(
    output: Path,
    plan: Plan,
    wrk: str,
    started: float,
    bare: load.Result | None,
    backends: list[report.BackendReport],
    failure: str | None,
) -> int:
    problems = problems_of(bare, backends) + ([failure] if failure else [])
    checks = [check for backend in backends for check in backend.checks]
    report.write_json(
        output,
        {
            "meta": metadata(plan, wrk, started),
            "bare": bare.to_json() if bare else None,
            "backends": {backend.name: backend.to_json() for backend in backends},
            "targets_met": sum(check.passed for check in checks),
            "targets_total": len(checks),
            "problems": problems,
        },
    )
    if bare:
        print("\n" + report.table(bare, backends))
    met = sum(check.passed for check in checks)
    print(f"\ntargets met: {met}/{len(checks)} (a missed target does not fail the run)")
    print(f"report: {output}")
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
