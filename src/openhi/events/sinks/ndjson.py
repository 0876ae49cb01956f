"""The NDJSON file sink: one EventBridge event per line, appended and fsynced before the cursor moves.

A batch is written with one ``write`` on a file opened for appending, then flushed and ``os.fsync``-ed, so a
delivered event is on disk. A crash between the fsync and the cursor update writes the batch again on the next
pass (at least once: readers deduplicate by ``id``). The folder is created when missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from openhi.events.sinks.port import Outgoing

log = logging.getLogger(__name__)


class NdjsonSink:
    """Appends events to a local file."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self._path = path
        self._name = name or f"ndjson:{path}"

    @property
    def name(self) -> str:
        return self._name

    def deliver(self, batch: list[Outgoing], deadline: float) -> int:
        """Append the batch at once (a local write does not wait: ``deadline`` is not needed)."""
        if not batch:
            return 0
        data = b"".join(item.body() + b"\n" for item in batch)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("ab") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            log.warning("event sink %s: cannot append to %s: %s", self._name, self._path, exc)
            return 0
        return len(batch)

    def stop(self) -> None:
        """Nothing to release: the file is opened per batch."""
