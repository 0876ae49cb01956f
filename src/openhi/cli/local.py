"""Local commands that work on the data dir directly, without a server: ``datastore create`` and ``import``.

``openhi import SOURCE --datastore-id ID`` records an import job exactly like StartDICOMImportJob (it is
listed by ListDICOMImportJobs afterwards), runs it in this process with the same worker pool the server
uses, shows a progress bar (files, MB, rate) and ends with a summary table. SOURCE is a folder or a
``file:///`` / ``s3://`` URI; outputs go to ``--output`` (default ``{data_dir}/import-outputs/``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openhi.bootstrap import Services
from openhi.config import Settings
from openhi.datastores.model import DatastoreStatus
from openhi.datastores.service import CreateDatastoreRequest
from openhi.imports.pipeline import FileOutcome
from openhi.imports.service import StartImportRequest

LOCAL_ROLE = "arn:aws:iam::123456789012:role/OpenHILocalImport"


def _uri(source: str) -> str:
    if source.startswith(("s3://", "file://")):
        return source
    return f"file://{Path(source).resolve()}/"


def create_datastore(services: Services, settings: Settings, name: str, console: Console) -> str:
    """Create a data store and wait until it is ACTIVE; return its id."""
    created = services.datastores.create(CreateDatastoreRequest(client_token=uuid.uuid4().hex, name=name))
    deadline = time.monotonic() + settings.datastore_transition_seconds + 30
    while services.datastores.get(created.datastore_id).status != DatastoreStatus.ACTIVE:
        if time.monotonic() > deadline:
            raise TimeoutError(f"datastore {created.datastore_id} did not become ACTIVE")
        services.lifecycle.sweep()
        time.sleep(0.1)
    console.print(created.datastore_id)
    return created.datastore_id


def run_import(
    services: Services,
    settings: Settings,
    source: str,
    datastore_id: str,
    output: str | None,
    console: Console,
) -> int:
    """Import SOURCE into the data store with a progress bar; exit status 0 when the job COMPLETED."""
    output_uri = _uri(output) if output else f"file://{(settings.data_dir / 'import-outputs').resolve()}/"
    job = services.imports.start(
        StartImportRequest(
            datastore_id=datastore_id,
            client_token=uuid.uuid4().hex,
            data_access_role_arn=LOCAL_ROLE,
            input_uri=_uri(source),
            output_uri=output_uri,
            job_name="openhi-cli-import",
        )
    )
    totals = {"files": 0, "bytes": 0, "failed": 0}
    started = time.monotonic()
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[mb]:.1f} MB  {task.fields[rate]:.1f} files/s  {task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("files", total=None, mb=0.0, rate=0.0, failed=0)

        def advance(outcome: FileOutcome) -> None:
            totals["files"] += 1
            totals["bytes"] += outcome.size
            totals["failed"] += outcome.staged is None
            elapsed = max(time.monotonic() - started, 1e-6)
            progress.update(
                bar,
                advance=1,
                mb=totals["bytes"] / 1e6,
                rate=totals["files"] / elapsed,
                failed=totals["failed"],
            )

        finished = services.runner.run_now(job.datastore_id, job.job_id, advance)
    services.runner.stop()
    table = Table(title=f"Import job {finished.job_id}: {finished.status.value}")
    for column in ("files", "imported", "failed", "MB", "seconds", "files/s"):
        table.add_column(column, justify="right")
    elapsed = time.monotonic() - started
    table.add_row(
        str(totals["files"]),
        str(totals["files"] - totals["failed"]),
        str(totals["failed"]),
        f"{totals['bytes'] / 1e6:.1f}",
        f"{elapsed:.1f}",
        f"{totals['files'] / max(elapsed, 1e-6):.1f}",
    )
    console.print(table)
    if finished.message:
        console.print(finished.message)
    console.print(f"outputs: {output_uri}{finished.datastore_id}-DicomImport-{finished.job_id}/")
    return 0 if finished.status.value == "COMPLETED" else 1
