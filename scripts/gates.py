"""Quality gates behind ``make gates``, judged from the reports of the last ``make test``.

- Coverage: branch coverage over the SQLite and the PostgreSQL + Redis runs together
  (``reports/.coverage.all``, combined by ``scripts/test``) is at least ``--fail-under`` (90 %).
  The threshold lives here rather than in ``[tool.coverage.report]``, where pytest-cov would apply
  it to every run, including ``make test ARGS='-k login'``.
- Skips: no test was skipped in either run (``reports/junit-<backend>.xml``). In CI every service
  is there, so a skip means a test did not run; each one is printed with its reason.

Exits 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from xml.etree import ElementTree

import coverage
from coverage.exceptions import CoverageException

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BACKENDS = ("sqlite", "postgres")
FAIL_UNDER = 90.0


def coverage_gate(fail_under: float) -> bool:
    data = REPORTS / ".coverage.all"
    missing = [b for b in BACKENDS if not (REPORTS / f".coverage.{b}").is_file()]
    if not data.is_file() or missing:
        absent = ", ".join(str(REPORTS / f".coverage.{b}") for b in missing) or str(data)
        print(f"coverage: FAILED: no coverage data ({absent}); run `make test` with every service")
        return False
    table = io.StringIO()
    try:
        cov = coverage.Coverage(data_file=str(data), config_file=str(ROOT / "pyproject.toml"))
        cov.load()
        total = cov.report(file=table)
    except CoverageException as error:
        print(f"coverage: FAILED: {error}")
        return False
    verdict = "passed" if total >= fail_under else "FAILED"
    line = f"coverage: {total:.2f} % of lines and branches, SQLite + PostgreSQL runs combined"
    print(f"{line} (minimum {fail_under:g} %): {verdict}")
    if total < fail_under:
        print(table.getvalue(), end="")
    return total >= fail_under


def _skips(path: Path) -> tuple[int, list[str]]:
    """The number of test cases in a JUnit report, and one line per skipped one."""
    root = ElementTree.parse(path).getroot()  # noqa: S314 - our own pytest's report
    cases = list(root.iter("testcase"))
    skipped = []
    for case in cases:
        for skip in case.findall("skipped"):
            name = f"{case.get('classname', '?')}::{case.get('name', '?')}"
            skipped.append(f"{name}: {skip.get('message') or skip.text or 'no reason given'}")
    return len(cases), skipped


def skip_gate() -> bool:
    ok = True
    for backend in BACKENDS:
        path = REPORTS / f"junit-{backend}.xml"
        if not path.is_file():
            print(f"skips ({backend}): FAILED: no {path.relative_to(ROOT)}; the suite did not run")
            ok = False
            continue
        try:
            count, skipped = _skips(path)
        except ElementTree.ParseError as error:
            print(f"skips ({backend}): FAILED: {path.relative_to(ROOT)} is unreadable: {error}")
            ok = False
            continue
        if not count:
            print(f"skips ({backend}): FAILED: {path.relative_to(ROOT)} holds no test")
            ok = False
        elif skipped:
            print(f"skips ({backend}): FAILED: {len(skipped)} of {count} tests skipped")
            for line in skipped:
                print(f"    {line}")
            ok = False
        else:
            print(f"skips ({backend}): none of {count} tests skipped: passed")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="Coverage and skipped-test gates over reports/.")
    parser.add_argument("--fail-under", type=float, default=FAIL_UNDER, metavar="PERCENT")
    args = parser.parse_args()
    results = [coverage_gate(args.fail_under), skip_gate()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
