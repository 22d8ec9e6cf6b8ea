"""Command history benchmarks: list and search with 100,000 entries of one user, on PostgreSQL.

    python bench/history.py [--quick] [--output reports/bench-history.json]

One `devpocket serve` process on a throwaway PostgreSQL database (production mode, as
bench/run.py runs it; with Redis when it is reachable). One account gets 100,000 varied entries
written straight into the database with COPY (PostgreSQL computes the generated search column as
for any insert), then VACUUM ANALYZE, as a database in service would have had. Measures, with
median and p99:
- `GET /history/commands` with the default filters (the newest 50 and the total): 200 requests;
- `GET /history/search` with words from rare to common (a tenth of the entries or more match
  the common ones), one after another: 200 requests, with the median of each word too;
- for information, 50 requests each of the favorites filter, a substring query and the stats.
Fails (exit 1) on an unexpected answer, not on timings. `--quick`: 10,000 entries, 30 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import server  # noqa: E402 - bench/ is the script's directory, as for bench/run.py
from report import percentile  # noqa: E402

COMMANDS = "/api/v1/history/commands"
SEARCH = "/api/v1/history/search"
TEMPLATES = (
    "git status", "git commit -m 'fix {w}'", "git push origin {w}", "git checkout -b {w}-{n}",
    "docker compose up -d {w}", "docker ps -a", "docker logs -f {w}", "docker build -t {w}:{n} .",
    "kubectl get pods -n {w}", "kubectl describe pod {w}-{n}", "kubectl rollout restart deploy/{w}",
    "ls -la", "cd /srv/{w}", "vim /etc/nginx/sites-available/{w}.conf", "tail -f /var/log/{w}.log",
    "npm run build", "npm install {w}", "python manage.py migrate {w}", "pytest -k {w}",
    "ssh deploy@{w}-{n}.example.com", "grep -rn {w} src", "make test", "cargo build --release",
    "terraform plan -var env={w}", "psql -h db -c 'select count(*) from {w}'", "htop", "df -h",
)  # fmt: skip
WORDS = (
    "api", "web", "worker", "billing", "search", "auth", "gateway", "cache", "queue", "mailer",
    "prod", "staging", "dev", "alpha", "beta", "metrics", "ingest", "export", "reports", "admin",
)  # fmt: skip
DIRECTORIES = ("/srv/api", "/srv/web", "/home/dev/projects/gateway", "/etc/nginx", "/var/www", None)
TAGS = ("deploy", "db", "debug")
QUERIES = ("docker", "git comm", "nginx", "kube", "migrate", "billing prod", "build-4711",
           "deploy", "pytest", "nomatchatall")  # fmt: skip
COLUMNS = (
    "id", "user_id", "command", "output", "result_type", "exit_code", "execution_time_ms",
    "session_id", "working_directory", "shell_type", "executed_at", "is_favorite", "tags",
    "created_at", "updated_at",
)  # fmt: skip


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "count": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
    }


def _records(user_id: uuid.UUID, count: int) -> list[tuple[Any, ...]]:
    """``count`` entries over a year, in COPY's column order; the same every run."""
    rng = random.Random(2025)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    records = []
    for n in range(count):
        command = rng.choice(TEMPLATES).format(w=rng.choice(WORDS), n=rng.randrange(10000))
        failed = rng.random() < 0.15
        at = start + timedelta(seconds=rng.randrange(365 * 86400))
        records.append(
            (
                uuid.uuid4(), user_id, command, f"output of {n}\n" * rng.randrange(1, 4),
                "error" if failed else "success", 1 if failed else 0, rng.randrange(2, 20000),
                f"session-{rng.randrange(500)}", rng.choice(DIRECTORIES), "bash", at,
                rng.random() < 0.02, json.dumps(rng.sample(TAGS, rng.randrange(2))),
                at, at,
            )
        )  # fmt: skip
    return records


async def _fill(database_url: str, user_id: uuid.UUID, count: int) -> float:
    """Write the entries with COPY and analyse the table; answers the seconds it took."""
    import asyncpg

    started = time.perf_counter()
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.copy_records_to_table(
            "command_history", records=_records(user_id, count), columns=COLUMNS
        )
        await connection.execute("VACUUM ANALYZE command_history")
    finally:
        await connection.close()
    return time.perf_counter() - started


def _timed(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise server.ServerError(f"GET {path} answered {response.status_code}: {response.text}")
    return elapsed, response.json()["data"]


def _register(client: httpx.Client) -> tuple[str, uuid.UUID]:
    body = {"email": "history@example.com", "username": "historybench", "password": "bench-Pw-1x"}
    answer = client.post("/api/v1/auth/register", json=body)
    if answer.status_code != 201:
        raise server.ServerError(f"register answered {answer.status_code}: {answer.text}")
    registered = answer.json()["data"]
    return registered["access_token"], uuid.UUID(registered["user"]["id"])


def _measure(client: httpx.Client, entries: int, calls: int) -> dict[str, Any]:
    lists = []
    for _ in range(calls):
        elapsed, page = _timed(client, COMMANDS, {})
        if page["total"] != entries or len(page["commands"]) != 50:
            raise server.ServerError(f"the list answered {page['total']} entries, not {entries}")
        lists.append(elapsed)
    by_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    matches: dict[str, int] = {}
    for n in range(calls):
        q = QUERIES[n % len(QUERIES)]
        elapsed, page = _timed(client, SEARCH, {"q": q})
        matches[q] = page["total"]
        by_query[q].append(elapsed)
    searches = [elapsed for samples in by_query.values() for elapsed in samples]
    report: dict[str, Any] = {"list_default": _summary(lists), "search": _summary(searches)}
    extra = max(calls // 4, 10)
    variants = {
        "list_favorites_only": (COMMANDS, {"favorites_only": "true"}),
        "list_substring_query": (COMMANDS, {"query": "compose"}),
        "stats": ("/api/v1/history/stats", {}),
    }
    for name, (path, params) in variants.items():
        report[name] = _summary([_timed(client, path, params)[0] for _ in range(extra)])
    report["search_by_query"] = {
        q: {"matches": matches[q], "median_ms": round(statistics.median(by_query[q]), 2)}
        for q in QUERIES
    }
    return report


def _run(entries: int, calls: int) -> dict[str, Any]:
    redis = server.reachable(server.REDIS_URL, 6379)
    with (
        tempfile.TemporaryDirectory(prefix="devpocket-bench-history-") as tmp,
        server.postgres_database() as database_url,
        server.redis_prefix() if redis else contextlib.nullcontext("") as prefix,
    ):
        extra = {"DATABASE_URL": database_url}
        if redis:
            extra.update(REDIS_URL=server.REDIS_URL, REDIS_KEY_PREFIX=prefix)
        env = server.devpocket_environment(Path(tmp), **extra)
        log = ROOT / "reports" / "bench-history-server.log"
        with server.serving(
            "devpocket", server.devpocket_command(), env, log, "/health/live"
        ) as srv:
            client = httpx.Client(base_url=srv.base_url, timeout=60)
            with client:
                token, user_id = _register(client)
                client.headers["Authorization"] = f"Bearer {token}"
                fill_s = asyncio.run(_fill(database_url, user_id, entries))
                report = _measure(client, entries, calls)
    return {"entries": entries, "fill_seconds": round(fill_s, 1), **report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entries, 30 requests each")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench-history.json")
    args = parser.parse_args()
    if not server.reachable(server.POSTGRES_ADMIN_URL, 5432):
        print(f"PostgreSQL is not reachable at {server.POSTGRES_ADMIN_URL}; set BENCH_POSTGRES_URL")
        return 1
    entries, calls = (10_000, 30) if args.quick else (100_000, 200)
    report = _run(entries, calls)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{report['entries']} entries of one user, written in {report['fill_seconds']} s")
    for name in ("list_default", "search", "list_favorites_only", "list_substring_query", "stats"):
        row = report[name]
        print(f"{name}: {row['count']} requests, "
              f"median {row['median_ms']} ms, p99 {row['p99_ms']} ms")  # fmt: skip
    print(f"report: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
