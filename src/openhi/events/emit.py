"""Appending events to the outbox in the unit of work of the change (the transactional outbox).

The services call these helpers right after they changed a state in a unit of work, so the event and the change
commit together or not at all: a process killed after the commit loses no event, one killed before it leaves
neither (the outbox pattern; Richardson, *Microservices Patterns* ch. 3.3). A unit of work that is re-run after
a lost race appends again in the new attempt only (the failed attempt rolled back). Each helper appends after
the state change it reports, so that of two changes of one resource the later one is appended later
(``outbox.py`` relies on it for the order per resource).
"""

from __future__ import annotations

from datetime import datetime

from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.events.catalogue import datastore_event, image_set_event, import_job_event
from openhi.imagesets.model import ImageSet, ImageSetWorkflowStatus
from openhi.imports.model import ImportJob
from openhi.index.port import UnitOfWork

LOCK_WORKFLOWS = frozenset(
    {
        ImageSetWorkflowStatus.UPDATING,
        ImageSetWorkflowStatus.COPYING,
        ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS,
        ImageSetWorkflowStatus.DELETING,
    }
)
"""Workflow statuses an image set enters by being locked (``Locks.lock`` reports those)."""


def datastore_changed(uow: UnitOfWork, datastore: Datastore) -> None:
    """The data store is now in ``datastore.status``."""
    uow.events.append(datastore_event(datastore))


def transition_datastore(
    uow: UnitOfWork, datastore: Datastore, expected: DatastoreStatus, new: DatastoreStatus, at: datetime
) -> bool:
    """Compare-and-set the data store's status (``DatastoreRepository.transition``) and, when this call moved it,
    append its event; True when it moved."""
    moved = uow.datastores.transition(datastore.datastore_id, expected, new, at)
    if moved:
        datastore_changed(uow, datastore.with_status(new, at))
    return moved


def save_import_job(uow: UnitOfWork, job: ImportJob) -> None:
    """Replace the job's row (``ImportJobRepository.update``) and append an event when its status changed."""
    before = uow.import_jobs.get(job.datastore_id, job.job_id)
    uow.import_jobs.update(job)
    import_job_changed(uow, before, job)


def import_job_changed(uow: UnitOfWork, before: ImportJob | None, after: ImportJob) -> None:
    """An import job row was written: an event when it is new or its status changed (lease renewals are not)."""
    if before is None or before.status != after.status:
        uow.events.append(import_job_event(after))


def image_set_changed(uow: UnitOfWork, image_set: ImageSet, source_image_set_id: str | None = None) -> None:
    """The image set is now in ``image_set``'s state and workflow status (a copy names its source)."""
    uow.events.append(image_set_event(image_set, source_image_set_id))


def replace_image_set(uow: UnitOfWork, before: ImageSet, after: ImageSet) -> None:
    """Replace the image set's row (``ImageSetRepository.update``) and append an event when its state or
    workflow status changed (a re-run of an idempotent step reports nothing twice)."""
    uow.image_sets.update(after)
    if (before.state, before.workflow_status) != (after.state, after.workflow_status):
        image_set_changed(uow, after)


def version_written(uow: UnitOfWork, image_set: ImageSet) -> None:
    """A new version made the image set ACTIVE (CREATED, UPDATED, COPIED); a version written for an image set that
    is locked at once in the same unit of work (a copy's new destination) is reported by the lock instead."""
    if image_set.workflow_status not in LOCK_WORKFLOWS:
        uow.events.append(image_set_event(image_set))
