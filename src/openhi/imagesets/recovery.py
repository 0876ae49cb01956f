"""After a crash: image sets left LOCKED by an update, copy or delete that never finished.

A process that dies between locking an image set and finishing the background work leaves it LOCKED. The
sweep (every server process runs it periodically) takes image sets locked for longer than ``grace_seconds``
that no live operation of this process is finishing, and ends them in a consistent, readable state: an
interrupted delete is completed (it is idempotent); an interrupted update or copy is abandoned — the image set
goes back to ACTIVE at its last written version with UPDATE_FAILED / COPY_FAILED and a message. Nothing written
before the crash is lost: versions are only visible once fully written.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from openhi.clock import Clock
from openhi.imagesets.deletes import ImageSetDeletes
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetWorkflowStatus
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)
INTERRUPTED = "The operation was interrupted because the server stopped before it finished; nothing was changed"
FAILED_AFTER = {
    ImageSetWorkflowStatus.UPDATING: ImageSetWorkflowStatus.UPDATE_FAILED,
    ImageSetWorkflowStatus.COPYING: ImageSetWorkflowStatus.COPY_FAILED,
    ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS: ImageSetWorkflowStatus.COPY_FAILED,
}


class WriteRecovery:
    """Ends writes that a dead process left unfinished."""

    def __init__(
        self, index: Index, locks: Locks, deletes: ImageSetDeletes, clock: Clock, grace_seconds: float
    ) -> None:
        self._index = index
        self._locks = locks
        self._deletes = deletes
        self._clock = clock
        self._grace = timedelta(seconds=grace_seconds)

    def sweep(self) -> int:
        """Recover every stale lock; return how many image sets were recovered."""
        cutoff = self._clock() - self._grace
        stale = self._index.run(lambda uow: uow.image_sets.locked_before(cutoff), readonly=True)
        recovered = 0
        for image_set in stale:
            if self._locks.in_flight(image_set):
                continue
            if image_set.workflow_status == ImageSetWorkflowStatus.DELETING:
                self._deletes.release(image_set)
            else:
                self._abandon(image_set)
            log.warning("recovered image set %s left %s", image_set.image_set_id, image_set.workflow_status.value)
            recovered += 1
        return recovered

    def _abandon(self, image_set: ImageSet) -> None:
        failed = FAILED_AFTER.get(image_set.workflow_status, ImageSetWorkflowStatus.UPDATE_FAILED)

        def work(uow: UnitOfWork) -> None:
            self._locks.unlock(uow, image_set, failed, INTERRUPTED)

        self._index.run(work)
