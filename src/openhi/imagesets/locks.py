"""Locks and asynchronous completion of image set writes (guide 6922-8866).

UpdateImageSetMetadata, CopyImageSet and DeleteImageSet answer at once with the image set LOCKED and a
workflow status (UPDATING, COPYING, COPYING_WITH_READ_ONLY_ACCESS, DELETING), then finish in the background.
A lock is a compare-and-set on (latest version, ACTIVE) in the index, so of two concurrent writers exactly one
wins and the other gets ConflictException; a LOCKED image set refuses every write. Each operation has its own
quota per data store (guide 22741-22765: 100 concurrent CopyImageSet, 100 DeleteImageSet, 100
UpdateImageSetMetadata requests, each adjustable) -> ServiceQuotaExceededException. A request in flight is an
image set locked with that operation's workflow status: UPDATING, DELETING, and for a copy its source
(COPYING_WITH_READ_ONLY_ACCESS; one per request, the destination is not counted again). When the background
work fails, the image set goes back to ACTIVE with the failed workflow status and a message readable through
GetImageSet.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from datetime import datetime

from openhi.clock import Clock
from openhi.errors import ConflictError, OpenHIError, QuotaExceededError
from openhi.events import emit
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)
MESSAGE_CHARACTERS = re.compile(r"[^\w -:`]")  # the model's Message pattern: [\w -:`]+


QUOTA_OPERATIONS = {
    ImageSetWorkflowStatus.UPDATING: "UpdateImageSetMetadata",
    ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS: "CopyImageSet",
    ImageSetWorkflowStatus.DELETING: "DeleteImageSet",
}
"""The lock workflow that counts one request of each operation with a concurrency quota."""


def wire_message(text: str) -> str:
    """A message the model's pattern accepts (other characters become spaces), at most 2,048 characters."""
    return MESSAGE_CHARACTERS.sub(" ", text)[:2048] or "failed"


class Locks:
    """Takes locks in a unit of work and finishes locked work in the background."""

    def __init__(
        self,
        index: Index,
        clock: Clock,
        executor: Executor,
        max_concurrent: int | Mapping[ImageSetWorkflowStatus, int] = 100,
    ) -> None:
        """``max_concurrent``: one quota for every operation, or per workflow of ``QUOTA_OPERATIONS``."""
        self._index = index
        self._clock = clock
        self._executor = executor
        self._max = (
            dict.fromkeys(QUOTA_OPERATIONS, max_concurrent) if isinstance(max_concurrent, int) else dict(max_concurrent)
        )
        self._in_flight: set[tuple[str, str]] = set()
        self._guard = threading.Lock()

    def lock(
        self,
        uow: UnitOfWork,
        image_set: ImageSet,
        expected_version: int | None,
        workflow: ImageSetWorkflowStatus,
        *,
        count_quota: bool = True,
        source_image_set_id: str | None = None,
    ) -> ImageSet:
        """Lock ``image_set`` for ``workflow``; ConflictException if it is locked or not at that version.

        ``source_image_set_id``: the image set a COPYING destination copies from (its event names it)."""
        if image_set.state == ImageSetState.LOCKED:
            raise ConflictError(
                f"Image set {image_set.image_set_id} is locked ({image_set.workflow_status.value}); retry later"
            )
        if expected_version is not None and image_set.version_id != expected_version:
            raise ConflictError(
                f"latestVersionId {expected_version} is not the latest version of image set "
                f"{image_set.image_set_id} (it is {image_set.version_id})"
            )
        limit = self._max.get(workflow) if count_quota else None
        if limit is not None and uow.image_sets.count_locked(image_set.datastore_id, workflow) >= limit:
            raise QuotaExceededError(
                f"Datastore {image_set.datastore_id} already has {limit} {QUOTA_OPERATIONS[workflow]} requests in "
                "progress, the maximum"
            )
        now = self._clock()
        locked = uow.image_sets.set_state(
            image_set.datastore_id,
            image_set.image_set_id,
            image_set.version_id,
            [ImageSetState.ACTIVE],
            ImageSetState.LOCKED,
            workflow,
            None,
            now,
        )
        if not locked:
            raise ConflictError(f"Image set {image_set.image_set_id} changed concurrently; retry")
        result = _with(image_set, ImageSetState.LOCKED, workflow, now)
        emit.image_set_changed(uow, result, source_image_set_id)
        return result

    def unlock(
        self, uow: UnitOfWork, image_set: ImageSet, workflow: ImageSetWorkflowStatus, message: str | None = None
    ) -> None:
        """Back to ACTIVE with ``workflow`` (and a message when it failed)."""
        now = self._clock()
        unlocked = uow.image_sets.set_state(
            image_set.datastore_id,
            image_set.image_set_id,
            image_set.version_id,
            [ImageSetState.LOCKED],
            ImageSetState.ACTIVE,
            workflow,
            wire_message(message) if message else None,
            now,
        )
        if unlocked:
            emit.image_set_changed(uow, _with(image_set, ImageSetState.ACTIVE, workflow, now))

    def finish_later(
        self, locked: Sequence[ImageSet], work: Callable[[], None], fail: Callable[[str], None]
    ) -> Future[None]:
        """Run ``work`` in the background; on any error call ``fail`` with a readable message."""
        keys = [(image_set.datastore_id, image_set.image_set_id) for image_set in locked]
        with self._guard:
            self._in_flight.update(keys)

        def run() -> None:
            try:
                work()
            except Exception as exc:  # the image set must not stay locked: report and unlock
                message = exc.message if isinstance(exc, OpenHIError) else f"{type(exc).__name__}: {exc}"
                log.exception("background image set work failed")
                fail(message)
            finally:
                with self._guard:
                    self._in_flight.difference_update(keys)

        return self._executor.submit(run)

    def in_flight(self, image_set: ImageSet) -> bool:
        """True while this process is still finishing work on the image set."""
        with self._guard:
            return (image_set.datastore_id, image_set.image_set_id) in self._in_flight

    def now(self) -> datetime:
        """The clock, for callers that stamp rows."""
        return self._clock()


def _with(image_set: ImageSet, state: ImageSetState, workflow: ImageSetWorkflowStatus, at: datetime) -> ImageSet:
    from dataclasses import replace

    return replace(image_set, state=state, workflow_status=workflow, updated_at=at)
