"""Targets, the table on stdout and ``reports/bench.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from load import Result

# /auth/me throughput targets per backend (req/s); every other target is shared.
AUTH_ME_RPS = {"sqlite": 4000.0, "postgres": 2500.0}
AUTH_ME_P99_MS = 20.0
LIVE_VS_BARE = 0.60
READY_VS_BARE = 0.30
LOGINS_PER_S = 40.0
AUTH_ME_P99_DURING_LOGINS_MS = 50.0

LABELS = {
    "bare": "GET /bare (constant FastAPI app)",
    "health_live": "GET /health/live",
    "health_ready": "GET /health/ready",
    "auth_me": "GET /api/v1/auth/me",
    "auth_login": "POST /api/v1/auth/login",
    "auth_login_with_me": "POST /api/v1/auth/login with /auth/me",
    "auth_me_during_logins": "GET /api/v1/auth/me during logins",
}


@dataclass(frozen=True)
class Check:
    run: str
    what: str
    measured: float
    op: str  # ">=" or "<"
    target: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.measured >= self.target if self.op == ">=" else self.measured < self.target

    def describe(self) -> str:
        if self.unit == "x bare":
            return f">= {self.target:.0%} of bare"
        if self.what == "p99":
            return f"p99 < {self.target:g} ms"
        return f">= {self.target:g} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "target_text": self.describe(), "passed": self.passed}


@dataclass
class BackendReport:
    name: str
    runs: dict[str, Result] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    server_log: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        return {
            "runs": {name: result.to_json() for name, result in self.runs.items()},
            "memory": self.memory,
            "server_log": self.server_log,
            "checks": [check.to_json() for check in self.checks],
        }


def evaluate(backend: BackendReport, bare: Result) -> list[Check]:
    runs = backend.runs
    me, during = runs["auth_me"], runs["auth_me_during_logins"]
    return [
        Check("auth_me", "rate", me.rps, ">=", AUTH_ME_RPS[backend.name], "req/s"),
        Check("auth_me", "p99", me.latency_ms["p99"], "<", AUTH_ME_P99_MS, "ms"),
        Check(
            "health_live", "vs bare", ratio(runs["health_live"], bare), ">=", LIVE_VS_BARE, "x bare"
        ),
        Check(
            "health_ready",
            "vs bare",
            ratio(runs["health_ready"], bare),
            ">=",
            READY_VS_BARE,
            "x bare",
        ),
        Check("auth_login", "rate", runs["auth_login"].rps, ">=", LOGINS_PER_S, "logins/s"),
        Check(
            "auth_me_during_logins",
            "p99",
            during.latency_ms["p99"],
            "<",
            AUTH_ME_P99_DURING_LOGINS_MS,
            "ms",
        ),
    ]


def ratio(result: Result, bare: Result) -> float:
    return round(result.rps / bare.rps, 3) if bare.rps else 0.0


def _row(backend: str, result: Result, bare: Result, checks: list[Check]) -> list[str]:
    mine = [check for check in checks if check.run == result.name]
    verdict = ("PASS" if all(check.passed for check in mine) else "MISS") if mine else ""
    return [
        backend,
        LABELS.get(result.name, result.name),
        str(result.connections),
        f"{result.rps:,.0f}",
        f"{result.latency_ms['p50']:.2f}",
        f"{result.latency_ms['p99']:.2f}",
        f"{ratio(result, bare):.0%}" if result.connections == bare.connections else "",
        "; ".join(check.describe() for check in mine),
        verdict,
    ]


def table(bare: Result, backends: list[BackendReport]) -> str:
    header = ["backend", "endpoint", "conns", "req/s", "p50 ms", "p99 ms", "vs bare", "target", ""]
    rows = [_row("-", bare, bare, [])]
    for backend in backends:
        if backend.skipped:
            rows.append([backend.name, f"skipped: {backend.skipped}", *[""] * 7])
            continue
        rows += [
            _row(backend.name, result, bare, backend.checks) for result in backend.runs.values()
        ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(header), line(["-" * width for width in widths])]
    out += [line(row) for row in rows]
    out += [memory_line(backend) for backend in backends if not backend.skipped]
    return "\n".join(out)


def memory_line(backend: BackendReport) -> str:
    m = backend.memory
    if not m:
        return f"{backend.name}: no memory figures"
    warm, total = m["after_warmup"], m["after_total"]
    return (
        f"{backend.name} RSS: {m['after_start_kib'] / 1024:.1f} MiB after start, "
        f"{warm['rss_kib'] / 1024:.1f} MiB after {warm['requests']:,} requests, "
        f"{total['rss_kib'] / 1024:.1f} MiB after {total['requests']:,} "
        f"(growth after warm-up {m['growth_after_warmup_kib'] / 1024:+.1f} MiB), "
        f"{m['after_all_runs_kib'] / 1024:.1f} MiB after all runs (logins included); "
        f"server log {backend.server_log.get('lines', 0):,} lines, "
        f"{backend.server_log.get('error_lines', 0)} at error level"
    )


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at ``fraction`` of the ordered samples (nearest rank), e.g. 0.99 for p99."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
