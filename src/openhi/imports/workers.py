"""The worker-process side of imports: a process pool whose workers open their own blob stores.

Workers are started with the ``spawn`` method (never ``fork``: the server holds threads and database
connections), inherit the environment (so S3 endpoints and credentials are the server's), and keep one
blob store per URL for their lifetime. Only ``FileTask`` goes in and ``FileOutcome`` comes out.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache

from openhi.blobs.factory import open_blob_store
from openhi.blobs.port import BlobStore
from openhi.imports.pipeline import FileOutcome, FileTask, import_file


@cache
def _store(url: str) -> BlobStore:
    return open_blob_store(url)


def run_tasks(tasks: list[FileTask]) -> list[FileOutcome]:
    """Entry point executed in a worker process: a few files, one after the other."""
    return [import_file(task, _store) for task in tasks]


def _exit_with(parent_pid: int, interval: float = 1.0) -> None:
    """Worker initializer: end this worker when the server that started it is gone (killed without a chance to
    shut its pool down), instead of lingering as an orphan."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each ending with its parent."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with,
        initargs=(os.getpid(),),
    )
