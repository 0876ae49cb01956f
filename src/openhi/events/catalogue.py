"""The guide's event catalogue: which state change is which event, with which detail (guide 20221-20911).

Data stores (guide 20235-20242, examples 20276-20427): CREATING, CREATE_FAILED, ACTIVE, DELETING, DELETED, with
``datastoreId``, ``datastoreName``, ``datastoreStatus``. Import jobs (20246-20250, examples 20428-20574):
SUBMITTED, IN_PROGRESS, COMPLETED, FAILED, with ``datastoreId``, ``jobId``, ``jobName``, ``jobStatus``,
``inputS3Uri``, ``outputS3Uri``; their ``resources`` is the data store's ARN. Image sets (20254-20264, examples
20575-20911): one event per workflow status (CREATED ... DELETED) with ``isPrimary``, ``imageSetVersion`` (a
string), ``datastoreId``, ``imagesetId``, ``imageSetState``, ``imageSetWorkflowStatus``, and for COPYING the
``sourceImageSetArn`` (example 20610-20640). The builders are pure: the id is a fresh version-4 UUID, the time
is the entity's ``updated_at`` (the moment of the change, from the injected clock).
"""

from __future__ import annotations

import uuid

from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.events.model import ChangeEvent
from openhi.imagesets.model import ImageSet, ImageSetWorkflowStatus
from openhi.imports.model import ImportJob, JobStatus

DATASTORE_DETAIL_TYPES: dict[DatastoreStatus, str] = {
    DatastoreStatus.CREATING: "Data Store Creating",
    DatastoreStatus.CREATE_FAILED: "Data Store Creation Failed",
    DatastoreStatus.ACTIVE: "Data Store Created",
    DatastoreStatus.DELETING: "Data Store Deleting",
    DatastoreStatus.DELETED: "Data Store Deleted",
}

IMPORT_JOB_DETAIL_TYPES: dict[JobStatus, str] = {
    JobStatus.SUBMITTED: "Import Job Submitted",
    JobStatus.IN_PROGRESS: "Import Job In Progress",
    JobStatus.COMPLETED: "Import Job Completed",
    JobStatus.FAILED: "Import Job Failed",
}

IMAGE_SET_DETAIL_TYPES: dict[ImageSetWorkflowStatus, str] = {
    ImageSetWorkflowStatus.CREATED: "Image Set Created",
    ImageSetWorkflowStatus.COPYING: "Image Set Copying",
    ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS: "Image Set Copying With Read Only Access",
    ImageSetWorkflowStatus.COPIED: "Image Set Copied",
    ImageSetWorkflowStatus.COPY_FAILED: "Image Set Copy Failed",
    ImageSetWorkflowStatus.UPDATING: "Image Set Updating",
    ImageSetWorkflowStatus.UPDATED: "Image Set Updated",
    ImageSetWorkflowStatus.UPDATE_FAILED: "Image Set Update Failed",
    ImageSetWorkflowStatus.DELETING: "Image Set Deleting",
    ImageSetWorkflowStatus.DELETED: "Image Set Deleted",
}

DETAIL_TYPES: frozenset[str] = frozenset(
    [*DATASTORE_DETAIL_TYPES.values(), *IMPORT_JOB_DETAIL_TYPES.values(), *IMAGE_SET_DETAIL_TYPES.values()]
)


def _event_id() -> str:
    return str(uuid.uuid4())


def datastore_event(datastore: Datastore) -> ChangeEvent:
    """The event of a data store now in ``datastore.status``."""
    return ChangeEvent(
        event_id=_event_id(),
        detail_type=DATASTORE_DETAIL_TYPES[datastore.status],
        time=datastore.updated_at,
        datastore_id=datastore.datastore_id,
        detail={
            "datastoreId": datastore.datastore_id,
            "datastoreName": datastore.name,
            "datastoreStatus": datastore.status.value,
        },
    )


def import_job_event(job: ImportJob) -> ChangeEvent:
    """The event of an import job now in ``job.status``."""
    return ChangeEvent(
        event_id=_event_id(),
        detail_type=IMPORT_JOB_DETAIL_TYPES[job.status],
        time=job.updated_at,
        datastore_id=job.datastore_id,
        detail={
            "datastoreId": job.datastore_id,
            "jobId": job.job_id,
            "jobName": job.job_name,
            "jobStatus": job.status.value,
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": job.output_s3_uri,
        },
    )


def image_set_event(image_set: ImageSet, source_image_set_id: str | None = None) -> ChangeEvent:
    """The event of an image set now in ``image_set.workflow_status`` (``source_image_set_id``: a copy's source)."""
    return ChangeEvent(
        event_id=_event_id(),
        detail_type=IMAGE_SET_DETAIL_TYPES[image_set.workflow_status],
        time=image_set.updated_at,
        datastore_id=image_set.datastore_id,
        image_set_id=image_set.image_set_id,
        detail={
            "isPrimary": image_set.is_primary,
            "imageSetVersion": str(image_set.version_id),
            "datastoreId": image_set.datastore_id,
            "imagesetId": image_set.image_set_id,
            "imageSetState": image_set.state.value,
            "imageSetWorkflowStatus": image_set.workflow_status.value,
        },
        source_image_set_id=source_image_set_id,
    )
