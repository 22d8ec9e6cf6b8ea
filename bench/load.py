"""Driving wrk: one run is one wrk process with ``bench/wrk.lua``; results come back as data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WRK_SCRIPT = Path(__file__).with_name("wrk.lua")
MARKER = "BENCH_JSON "
# A request slower than this counts as a wrk timeout error, which fails the benchmark.
WRK_TIMEOUT = "5s"


class LoadError(Exception):
    """wrk could not run, or printed no result."""


@dataclass(frozen=True)
class Load:
    """What to send: one endpoint, how hard, for how long."""

    name: str
    url: str
    connections: int
    threads: int = 2
    duration_s: float = 10.0
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def command(self, wrk: str) -> list[str]:
        argv = [wrk, f"-t{self.threads}", f"-c{self.connections}", f"-d{self.duration_s:g}s"]
        argv += ["--timeout", WRK_TIMEOUT, "-s", str(WRK_SCRIPT)]
        for name, value in self.headers.items():
            argv += ["-H", f"{name}: {value}"]
        return [*argv, self.url]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "BENCH_METHOD": self.method, "BENCH_BODY": self.body or ""}


@dataclass(frozen=True)
class Result:
    name: str
    path: str
    method: str
    connections: int
    threads: int
    seconds: float
    requests: int
    rps: float
    latency_ms: dict[str, float]
    errors: dict[str, int]

    @property
    def failed_requests(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failed_requests": self.failed_requests}


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadError("wrk is not installed (Debian: apt-get install wrk)")
    return wrk


class Running:
    """A wrk process started in the background; ``wait()`` returns its result."""

    def __init__(self, load: Load, wrk: str) -> None:
        self.load = load
        self._process = subprocess.Popen(
            load.command(wrk),
            env=load.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self) -> Result:
        output, _ = self._process.communicate()
        if self._process.returncode != 0:
            raise LoadError(
                f"wrk failed for {self.load.name} (exit {self._process.returncode}):\n{output}"
            )
        return parse(self.load, output)


def run(load: Load, wrk: str) -> Result:
    return Running(load, wrk).wait()


def parse(load: Load, output: str) -> Result:
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise LoadError(f"wrk printed no result for {load.name}:\n{output}")
    data = json.loads(lines[-1].removeprefix(MARKER))
    seconds = data["duration_us"] / 1e6
    latency = {key: round(value / 1000, 3) for key, value in data["latency_us"].items()}
    return Result(
        name=load.name,
        path="/" + load.url.split("/", 3)[3],
        method=load.method,
        connections=load.connections,
        threads=load.threads,
        seconds=round(seconds, 2),
        requests=data["requests"],
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        latency_ms=latency,
        errors=data["errors"],
    )
