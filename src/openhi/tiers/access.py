"""Last access per image set (guide 23026-23032), recorded without writing the index on every read.

GetImageFrame runs at thousands of requests per second, so a read only notes ``(data store, image set) -> now`` in
a dictionary (``AccessTracker.accessed``); ``flush`` (a background loop every ``tier_access_flush_seconds``, and
at shutdown) writes the latest time of each noted image set in one unit of work, at most one row update per image
set per flush. The index keeps the later of the stored and the flushed time, so processes may flush in any order.

An access moves an archived image set back (guide 23026): the flush learns from the index which of the accessed
image sets are archived and has ``restore`` move them, in the background, while the reads themselves are served
at once from the archive location (``blob_store.py``). A process that stops before its flush loses at most the
accesses of one interval; an access recorded but not yet restored (a crash during the move) is found by the sweep
(``uow.tiers.accessed_while_archived``).

Services receive an ``AccessRecorder`` (``NO_ACCESS_RECORDING`` when tiers are not wired, e.g. in unit tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from openhi.clock import Clock
from openhi.errors import UnavailableError
from openhi.index.port import ImageSetAccess, Index

log = logging.getLogger(__name__)


class AccessRecorder(Protocol):
    """What the read and write use cases call when they access an image set (guide 23026-23030)."""

    def accessed(self, datastore_id: str, image_set_id: str) -> None:
        """Note an access to the image set, now."""
        ...


class _NoRecording:
    def accessed(self, datastore_id: str, image_set_id: str) -> None:
        """Nothing is recorded."""


NO_ACCESS_RECORDING: AccessRecorder = _NoRecording()


class AccessTracker:
    """Coalesces accesses in memory and writes them to the index on ``flush``."""

    def __init__(self, index: Index, clock: Clock, restore: Callable[[str, str], bool] | None = None) -> None:
        self._index = index
        self._clock = clock
        self._restore = restore
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], datetime] = {}

    def accessed(self, datastore_id: str, image_set_id: str) -> None:
        """Note an access (a dictionary write under a lock: no I/O)."""
        at = self._clock()
        with self._lock:
            self._pending[(datastore_id, image_set_id)] = at

    @property
    def pending(self) -> int:
        """Image sets accessed since the last flush."""
        with self._lock:
            return len(self._pending)

    def flush(self, *, restore: bool = True) -> list[tuple[str, str]]:
        """Write the noted accesses; move the archived ones among them back (unless ``restore`` is False, e.g. at
        shutdown). Answers the archived image sets found. On a failure to write, the accesses are kept for the
        next flush."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return []
        accesses = [ImageSetAccess(ds_id, is_id, at) for (ds_id, is_id), at in batch.items()]
        try:
            archived = self._index.run(lambda uow: uow.tiers.record_access(accesses))
        except BaseException:
            self._keep(batch)
            raise
        if restore and self._restore is not None:
            for ds_id, is_id in archived:
                self._restore_one(self._restore, ds_id, is_id)
        return archived

    def close(self) -> None:
        """At shutdown: write the noted accesses, leave restores to the next sweep (of any process)."""
        self.flush(restore=False)

    def _keep(self, batch: dict[tuple[str, str], datetime]) -> None:
        with self._lock:
            for key, at in batch.items():
                newer = self._pending.get(key)
                self._pending[key] = at if newer is None or newer < at else newer

    @staticmethod
    def _restore_one(restore: Callable[[str, str], bool], datastore_id: str, image_set_id: str) -> None:
        try:
            restore(datastore_id, image_set_id)
        except UnavailableError:
            raise  # the backends are down: the next flush or sweep tries again
        except Exception:
            log.exception("restoring image set %s to frequent access failed; the tier sweep retries", image_set_id)
