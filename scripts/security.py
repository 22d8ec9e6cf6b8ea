"""Security checks behind ``make security``: bandit on ``src``, pip-audit of the installed packages.

Reports: ``reports/bandit.json`` and ``reports/pip-audit.json``. Exits 1 when bandit reports a
finding (fix it, or justify it on its line with ``# nosec BXXX - reason``) or pip-audit a known
vulnerability, or when either tool fails. When the vulnerability database cannot be reached (no
network, or a package index that does not serve PyPI's per-release JSON API, which answers 404
for every release), the audit says so loudly and passes: a question nobody answered is not a
vulnerability found.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
BANDIT_REPORT = REPORTS / "bandit.json"
AUDIT_REPORT = REPORTS / "pip-audit.json"
AUDIT_TIMEOUT_S = 15

# What pip-audit (through requests and urllib3) prints when it cannot talk to the vulnerability
# service: its own ConnectionError, or a requests/urllib3 exception escaping as a traceback.
_UNREACHABLE = re.compile(
    r"Could not connect to PyPI's vulnerability feed|your network may be blocking"
    r"|PyPI is not redirecting properly|ConnectionError|ConnectTimeout|ReadTimeout|ProxyError"
    r"|NameResolutionError|Failed to resolve|Temporary failure in name resolution"
    r"|Name or service not known|Max retries exceeded|Connection refused|Network is unreachable"
    r"|timed out|\b5\d\d Server Error"
)
_NOT_ON_INDEX = "Dependency not found on PyPI"


def warn(message: str) -> None:
    print(f"!!! {message}", flush=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::warning title=pip-audit::{message}", flush=True)


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def bandit() -> bool:
    print("=== bandit (src) ===", flush=True)
    BANDIT_REPORT.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-r", "src", "-q"]
    done = subprocess.run(
        [*command, "-f", "json", "-o", str(BANDIT_REPORT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = load_json(BANDIT_REPORT)
    if not isinstance(report, dict):
        print(done.stdout + done.stderr, end="")
        print(f"bandit: FAILED (exit {done.returncode}, no report)")
        return False
    for error in report.get("errors", []):
        print(f"{error.get('filename')}: bandit could not scan it: {error.get('reason')}")
    for finding in report.get("results", []):
        print(
            f"{finding['filename']}:{finding['line_number']}: {finding['test_id']} "
            f"{finding['test_name']} (severity {finding['issue_severity']}, "
            f"confidence {finding['issue_confidence']}): {finding['issue_text']}"
        )
        # `code` holds numbered lines around the finding ("53     assert ..."): show its own.
        number = str(finding["line_number"])
        for line in (finding.get("code") or "").splitlines():
            if line.split(maxsplit=1)[:1] == [number]:
                print(f"    {line.removeprefix(number).strip()}")
    totals = report.get("metrics", {}).get("_totals", {})
    findings, errors = len(report.get("results", [])), len(report.get("errors", []))
    print(
        f"bandit: {findings} finding(s), {errors} error(s) in {totals.get('loc', '?')} lines; "
        f"{totals.get('nosec', 0)} line(s) justified with # nosec; report {_rel(BANDIT_REPORT)}"
    )
    if findings:
        print("bandit: fix each finding, or justify it on its line: # nosec BXXX - reason")
    elif done.returncode:
        print(done.stdout + done.stderr, end="")
        print(f"bandit: FAILED (exit {done.returncode})")
    return done.returncode == 0 and not findings and not errors


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _print_vulnerabilities(dependencies: list[dict[str, Any]]) -> int:
    count = 0
    for dependency in dependencies:
        for vuln in dependency.get("vulns", []):
            count += 1
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            aliases = ", ".join(vuln.get("aliases") or [])
            print(
                f"{dependency['name']} {dependency.get('version', '?')}: {vuln['id']}"
                f"{f' ({aliases})' if aliases else ''}; fixed in {fixed}"
            )
    return count


def _audit_result(dependencies: list[dict[str, Any]]) -> bool:
    """Judge a report pip-audit wrote: vulnerabilities fail; lookups nobody answered warn."""
    vulnerable = _print_vulnerabilities(dependencies)
    # --skip-editable still lists the project itself, as skipped: that is no gap in the audit.
    skipped = [
        d for d in dependencies if d.get("skip_reason") and "editable" not in d["skip_reason"]
    ]
    unanswered = [d for d in skipped if _NOT_ON_INDEX in d["skip_reason"]]
    audited = sum(1 for d in dependencies if not d.get("skip_reason"))
    for dependency in skipped:
        if dependency not in unanswered:
            print(f"not audited: {dependency['name']}: {dependency['skip_reason']}")
    if vulnerable:
        print(
            f"pip-audit: FAILED: {vulnerable} known vulnerability(ies); report {_rel(AUDIT_REPORT)}"
        )
        return False
    if unanswered and not audited:
        warn(
            f"pip-audit: the vulnerability database answered for none of the {len(unanswered)} "
            "installed packages (every release lookup was 'not found': this network's package "
            "index does not serve PyPI's vulnerability API). Dependencies were NOT audited; "
            "the run continues."
        )
        return True
    if unanswered:
        names = ", ".join(sorted(d["name"] for d in unanswered))
        warn(f"pip-audit: not on PyPI, so not audited: {names}")
    print(f"pip-audit: {audited} package(s) audited, no known vulnerability")
    return True


def pip_audit() -> bool:
    print("\n=== pip-audit (installed packages) ===", flush=True)
    AUDIT_REPORT.unlink(missing_ok=True)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip_audit", "--local", "--skip-editable"),
            *("--progress-spinner", "off", "--timeout", str(AUDIT_TIMEOUT_S)),
            *("--format", "json", "--output", str(AUDIT_REPORT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = load_json(AUDIT_REPORT)
    if isinstance(report, dict) and isinstance(report.get("dependencies"), list):
        ok = _audit_result(report["dependencies"])
        if done.returncode and ok:
            print(done.stderr, end="")
            print(f"pip-audit: FAILED (exit {done.returncode})")
            return False
        return ok
    output = (done.stdout + done.stderr).strip()
    if done.returncode and _UNREACHABLE.search(output):
        last = output.splitlines()[-1]
        warn(
            "pip-audit: the vulnerability database could not be reached "
            f"({last}). Dependencies were NOT audited; the run continues."
        )
        return True
    print(output)
    print(f"pip-audit: FAILED (exit {done.returncode}, no report)")
    return False


def main() -> int:
    REPORTS.mkdir(exist_ok=True)
    results = [bandit(), pip_audit()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
