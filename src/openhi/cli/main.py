"""``openhi serve`` runs the server; ``openhi config`` prints the effective settings and their sources;
``openhi iam ...`` manages IAM users, keys, roles and policies in the index (``cli/iam.py``); ``openhi tiers sweep``
runs the storage tier sweep once (``cli/tiers.py``).

Both take the same flags; settings not given as flags come from ``OPENHI_*`` variables, then the TOML
file, then defaults (see ``openhi.config``). Errors in settings are printed as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from openhi import __version__
from openhi.cli.iam import add_iam_commands, run_iam
from openhi.cli.keys import add_keys_commands, run_keys
from openhi.cli.tiers import add_tiers_commands, run_tiers
from openhi.config import Settings, describe, load_settings
from openhi.errors import OpenHIError

FLAG_FIELDS = ("host", "port", "workers", "data_dir", "index_url", "blob_url")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    common.add_argument("--port", type=int, help="TCP port (default 8080)")
    common.add_argument("--workers", type=int, help="server processes sharing the port (default 1)")
    common.add_argument("--data-dir", type=Path, help="where the embedded index, blobs and credentials live")
    common.add_argument("--index-url", help="sqlite:///path or postgresql://user@host/db")
    common.add_argument("--blob-url", help="file:///path or s3://bucket/prefix")
    common.add_argument("--config", type=Path, help="TOML settings file")
    parser = argparse.ArgumentParser(prog="openhi", description="OpenHI medical imaging archive")
    parser.add_argument("--version", action="version", version=f"openhi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[common], help="run the server")
    commands.add_parser("config", parents=[common], help="print effective settings and their sources")
    importing = commands.add_parser("import", parents=[common], help="import DICOM files into a data store")
    importing.add_argument("source", help="a folder, file:///folder/ or s3://bucket/prefix/")
    importing.add_argument("--datastore-id", required=True)
    importing.add_argument("--output", help="where job outputs go (default {data_dir}/import-outputs/)")
    datastore = commands.add_parser("datastore", help="data store commands").add_subparsers(
        dest="datastore_command", required=True
    )
    create = datastore.add_parser("create", parents=[common], help="create a data store and wait until ACTIVE")
    create.add_argument("name")
    add_iam_commands(commands, common)
    add_keys_commands(commands, common)  # encryption at rest (docs/encryption.md)
    add_tiers_commands(commands, common)
    return parser


def _settings(args: argparse.Namespace) -> tuple[Settings, dict[str, str]]:
    flags = {name: getattr(args, name) for name in FLAG_FIELDS}
    return load_settings(flags=flags, config_file=args.config)


def _print_config(settings: Settings, sources: dict[str, str]) -> None:
    rows = describe(settings, sources)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}  ({source})")


def _announce_key(access_key_id: str, secret: str, data_dir: Path) -> None:
    print(
        "\nGenerated root credentials (stored in "
        f"{(data_dir / 'credentials.json').resolve()}, mode 0600; shown only this once):\n"
        f"  export AWS_ACCESS_KEY_ID={access_key_id}\n"
        f"  export AWS_SECRET_ACCESS_KEY={secret}\n",
        file=sys.stderr,
        flush=True,
    )


def _serve_workers(settings: Settings) -> int:
    """``--workers N`` (N > 1): prepare the backends once here, then let uvicorn's supervisor run N processes.

    The import worker pool is shared out: each server process gets ``cpu / N`` import workers (at least one)
    unless ``import_workers`` is set.
    """
    import uvicorn

    from openhi.bootstrap import build
    from openhi.cli.worker_app import ENV, encode_settings

    # Migrations, bucket check, root credentials and every setting (throttle_rates ...), once: a setting that
    # cannot work fails here with one line instead of in every worker uvicorn would restart.
    services = build(settings).services
    services.index.close()
    if services.root_key_generated:
        _announce_key(services.root_key.access_key_id, services.root_key.secret_access_key, settings.data_dir)
    if settings.import_workers == 0:
        settings = replace(settings, import_workers=max(1, (os.cpu_count() or 1) // settings.workers))
    os.environ[ENV] = encode_settings(settings)
    if settings.metrics_enabled:  # every worker's call metrics in one directory, summed by any scrape
        from openhi.metrics.exporter import prepare_multiprocess

        prepare_multiprocess(settings.data_dir)
    _banner(settings)
    uvicorn.run(
        "openhi.cli.worker_app:create",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    print("OpenHI stopped: every server process finished its requests and its background work", file=sys.stderr)
    return 0


def _banner(settings: Settings) -> None:
    print(
        f"OpenHI {__version__} on http://{settings.host}:{settings.port} "
        f"(index {settings.effective_index_url.split('@')[-1]}, blobs {settings.effective_blob_url}"
        + (f", {settings.workers} processes)" if settings.workers > 1 else ")"),
        file=sys.stderr,
        flush=True,
    )


def _serve(settings: Settings) -> int:
    import uvicorn

    from openhi.bootstrap import build

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1:
        return _serve_workers(settings)
    application = build(settings)
    if application.services.root_key_generated:
        key = application.services.root_key
        _announce_key(key.access_key_id, key.secret_access_key, settings.data_dir)
    _banner(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            application.app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    )
    # uvicorn handles SIGTERM/SIGINT itself (stop accepting, finish in-flight requests, run the lifespan
    # shutdown) and then re-raises the signal to the handler that was installed before it started. A no-op
    # handler there turns a completed graceful shutdown into exit status 0 instead of death by signal.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    try:
        server.run()
    finally:
        application.services.index.close()
    print("OpenHI stopped: in-flight requests finished, background work stopped", file=sys.stderr, flush=True)
    return 0


def _local(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    from openhi.bootstrap import build_services
    from openhi.cli.local import create_datastore, run_import

    logging.basicConfig(level=logging.WARNING)
    services = build_services(settings)
    try:
        if args.command == "import":
            return run_import(services, settings, args.source, args.datastore_id, args.output, Console())
        create_datastore(services, settings, args.name, Console())
        return 0
    finally:
        services.index.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``openhi`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings, sources = _settings(args)
        if args.command == "config":
            _print_config(settings, sources)
            return 0
        if args.command == "serve":
            return _serve(settings)
        if args.command == "iam":
            return run_iam(args, settings)
        if args.command == "keys":
            return run_keys(args, settings)
        if args.command == "tiers":
            return run_tiers(args, settings)
        return _local(args, settings)
    except OpenHIError as exc:
        print(f"openhi: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
