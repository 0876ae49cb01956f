"""Rotating NDJSON files of audit records: one directory, one open file per server process.

Names are ``audit-{opened, UTC, microseconds}-{pid}-{sequence}.ndjson``, so that names sort by the time a file
was opened and several processes (``openhi serve --workers N``, or several servers sharing a directory) never
write to the same file. A file is closed and a new one opened when the next line would take it past
``max_bytes`` (0: no limit; a line longer than the limit gets a file of its own) and, with ``daily``, at the
first write of a new UTC day.

Retention: whenever a file is opened the directory keeps the ``keep`` newest audit files (0: keep all), whoever
wrote them. A file that is being written is never deleted: each process holds an exclusive ``flock`` on its open
file, and the pruner skips any file it cannot lock (the lock dies with its process, so a crashed process's file
becomes prunable).

Durability: ``write`` writes a batch of lines and flushes it to the operating system (a crash of the process
loses nothing written); with ``fsync`` every batch is also forced to disk (a power loss loses nothing written),
otherwise the file is forced to disk when it is rotated or closed.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from openhi.clock import Clock

log = logging.getLogger(__name__)

PREFIX = "audit-"
SUFFIX = ".ndjson"


def audit_files(folder: Path) -> list[Path]:
    """The audit files of ``folder``, oldest first."""
    return sorted(p for p in folder.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())


def _try_delete(path: Path) -> bool:
    """Delete ``path`` unless a process holds its lock (it is still being written); True when deleted."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path.unlink(missing_ok=True)
        return True


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete the oldest audit files beyond the ``keep`` newest (0: none); return what was deleted."""
    if keep <= 0:
        return []
    files = audit_files(folder)
    return [path for path in files[: max(0, len(files) - keep)] if _try_delete(path)]


class RotatingNdjson:
    """Appends lines to the current audit file of this process, rotating and pruning as configured."""

    def __init__(
        self,
        folder: Path,
        clock: Clock,
        *,
        max_bytes: int = 0,
        daily: bool = True,
        keep: int = 0,
        fsync: bool = False,
    ) -> None:
        self._folder = folder
        self._clock = clock
        self._max_bytes = max_bytes
        self._daily = daily
        self._keep = keep
        self._fsync = fsync
        self._handle: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._day = ""
        self._sequence = 0

    @property
    def path(self) -> Path | None:
        """The file being written (None before the first write and after ``close``)."""
        return self._path

    def prepare(self) -> None:
        """Create the directory and check it is writable, so that a bad ``audit_dir`` fails at start."""
        self._folder.mkdir(parents=True, exist_ok=True)
        if not os.access(self._folder, os.W_OK | os.X_OK):
            raise PermissionError(f"audit directory {self._folder} is not writable")

    def write(self, lines: Sequence[bytes]) -> None:
        """Append ``lines`` (each ending in a newline), rotating where needed, then flush (and fsync)."""
        for line in lines:
            handle = self._current(len(line))
            handle.write(line)
            self._size += len(line)
        if self._handle is not None:
            self._handle.flush()
            if self._fsync:
                os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Flush, force to disk and close the current file."""
        if self._handle is None:
            return
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        finally:
            self._handle.close()  # releases the lock
            self._handle = None
            self._path = None

    def _current(self, incoming: int) -> BinaryIO:
        today = self._clock().strftime("%Y%m%d")
        if self._handle is not None:
            too_big = self._max_bytes > 0 and self._size > 0 and self._size + incoming > self._max_bytes
            new_day = self._daily and today != self._day
            if not (too_big or new_day):
                return self._handle
            self.close()
        return self._open(today)

    def _open(self, today: str) -> BinaryIO:
        self._folder.mkdir(parents=True, exist_ok=True)
        opened = self._clock().strftime("%Y%m%dT%H%M%S%fZ")
        while True:
            self._sequence += 1
            path = self._folder / f"{PREFIX}{opened}-{os.getpid()}-{self._sequence:06d}{SUFFIX}"
            try:
                handle = path.open("xb")
            except FileExistsError:
                continue
            break
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._handle, self._path, self._size, self._day = handle, path, 0, today
        log.debug("audit trail: writing %s", path)
        prune(self._folder, self._keep)
        return handle
