"""The ``devpocket`` command: serve, migrate, openapi."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from devpocket.settings import ConfigurationError, Settings, create_private_directory


def _settings() -> Settings:
    try:
        settings = Settings()
        settings.check_startup()
    except (ValidationError, ConfigurationError) as error:
        raise SystemExit(f"devpocket: configuration error: {error}") from None
    return settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from devpocket.db import migrate

    settings = _settings()
    if args.workers > 1 and settings.redis_url is None:
        raise SystemExit(
            "devpocket: --workers > 1 needs REDIS_URL: without Redis, sign-outs and rate limits "
            "would not be shared between worker processes"
        )
    if settings.auto_migrate and not args.no_migrate:
        migrate.upgrade(settings)
    metrics = metrics_directory(settings, args.workers)
    if metrics is not None:
        prepare_metrics_directory(metrics)
        # Written, not only read: prometheus-client reads it in each process as it is imported,
        # and must not have been imported here first (it is not: nothing above imports it).
        os.environ[_METRICS_DIR_ENV] = str(metrics)
    uvicorn.run(
        "devpocket.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        server_header=False,
        # Ours is the access log (with request id and user); uvicorn's would format a line per
        # request only to drop it.
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=args.graceful_timeout,
        ws="devpocket.terminal.going_away:GoingAwayProtocol",
    )
    return 0


_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The files prometheus-client writes: <type>_<pid>.db (counter, gauge_livesum, histogram …).
_METRICS_FILE = re.compile(r"(counter|gauge_[a-z]+|histogram|summary)_\d+\.db")


def metrics_directory(settings: Settings, workers: int) -> Path | None:
    """Where processes keep metrics as files; None: in memory (one worker, nothing configured)."""
    if settings.prometheus_multiproc_dir is not None:
        return settings.prometheus_multiproc_dir
    if workers > 1:
        return settings.data_dir / "prometheus"
    return None


def prepare_metrics_directory(directory: Path) -> None:
    """Create the directory, or drop the metrics files of earlier runs from it.

    Values left there would be summed into every scrape. Only prometheus-client's own files go:
    the operator may have pointed the variable at a directory that holds other things.
    """
    create_private_directory(directory)
    for path in directory.iterdir():
        if _METRICS_FILE.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _migrate(args: argparse.Namespace) -> int:
    from devpocket.db import migrate

    settings = _settings()
    if args.downgrade:
        migrate.downgrade(settings, args.downgrade)
    else:
        migrate.upgrade(settings, args.revision)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from devpocket.ssh.rotation import rotate_encryption_command

    settings = _settings()
    try:
        report = rotate_encryption_command(settings, generate=args.generate)
    except ConfigurationError as error:
        raise SystemExit(f"devpocket: {error}") from None
    sys.stdout.write("\n".join(report.summary()) + "\n")
    # Unreadable secrets are reported, never destroyed; the exit code says they exist.
    return 1 if report.unreadable else 0


def _openapi(args: argparse.Namespace) -> int:
    from devpocket.app import create_app

    schema = create_app(Settings(testing=True)).openapi()
    text = json.dumps(schema, indent=2, sort_keys=False)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devpocket",
        description="DevPocket API server. Configuration comes from the environment (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API", description="Serve the API.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        help="seconds to let requests finish on shutdown (default 30)",
    )
    serve.set_defaults(handler=_serve)

    mig = commands.add_parser(
        "migrate", help="apply database migrations", description="Apply database migrations."
    )
    mig.add_argument("--revision", default="head", help="target revision (default head)")
    mig.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    mig.set_defaults(handler=_migrate)

    rotate = commands.add_parser(
        "rotate-encryption-key",
        help="re-encrypt every stored secret under the current encryption key",
        description=(
            "Re-encrypt every stored SSH secret under the first (current) key of ENCRYPTION_KEY, "
            "in small batches while servers keep running. Put the new key first in "
            "ENCRYPTION_KEY (keeping the old ones) on every server, run this, then drop the old "
            "keys. Exit code 1 when some secret could not be read with any key."
        ),
    )
    rotate.add_argument(
        "--generate",
        action="store_true",
        help="development only: first make a new current key in the data directory's keyring",
    )
    rotate.set_defaults(handler=_rotate)

    api = commands.add_parser(
        "openapi", help="print the OpenAPI schema", description="Print the OpenAPI schema."
    )
    api.add_argument("--output", "-o", help="write to this file instead of stdout")
    api.set_defaults(handler=_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
