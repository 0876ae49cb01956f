"""Writing image set versions: store a metadata document, insert the version, mirror it on the image set row.

Shared by the import commit and by UpdateImageSetMetadata / CopyImageSet (guide 4248-4406: every change is a
new immutable version; older versions stay readable). Documents are content-addressed blobs, so writing one is
idempotent and a retried unit of work writes the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.catalog.derive import catalog_of
from openhi.catalog.model import ImageSetCatalog
from openhi.dicom.normalize import GroupingKey
from openhi.events import emit
from openhi.imagesets import document
from openhi.imagesets.model import (
    ImageSet,
    ImageSetState,
    ImageSetSummary,
    ImageSetVersion,
    ImageSetWorkflowStatus,
)
from openhi.index.port import UnitOfWork


def store_document(blobs: BlobStore, datastore_id: str, doc: dict[str, Any]) -> str:
    """Write the encoded document (idempotent) and return its key."""
    data = document.encode(doc)
    key = keys.metadata_document(datastore_id, document.content_id(data))
    blobs.put(key, data)
    return key


def load_document(blobs: BlobStore, version: ImageSetVersion) -> dict[str, Any]:
    """The metadata document of a version."""
    return document.decode(blobs.get(version.metadata_key))


@dataclass(frozen=True)
class NewVersion:
    """What a write produces for one image set."""

    datastore_id: str
    image_set_id: str
    version_id: int
    metadata_key: str
    workflow_status: ImageSetWorkflowStatus
    is_primary: bool
    grouping: GroupingKey
    created_at: datetime
    summary: ImageSetSummary | None = None  # what search shows of the new document (DICOMTags)
    catalog: ImageSetCatalog | None = None  # what QIDO-RS shows of it (guide 2210-2664)

    @classmethod
    def of(cls, doc: dict[str, Any], **fields: Any) -> NewVersion:
        """A new version whose search summary and QIDO-RS catalog rows are taken from its document."""
        grouping: GroupingKey = fields["grouping"]
        return cls(
            **fields,
            summary=ImageSetSummary.from_document(doc, grouping.series_instance_uid),
            catalog=catalog_of(doc),
        )


def write_version(uow: UnitOfWork, new: NewVersion, now: datetime, job_id: str | None = None) -> ImageSetVersion:
    """Insert the version and make the image set row mirror it (ACTIVE); return the version.

    In the same unit of work the QIDO-RS catalog follows: a primary image set's rows are replaced by the new
    version's, a non-primary image set has none (guide 2214: QIDO-RS searches primary image sets only).
    """
    version = ImageSetVersion(
        datastore_id=new.datastore_id,
        image_set_id=new.image_set_id,
        version_id=new.version_id,
        state=ImageSetState.ACTIVE,
        workflow_status=new.workflow_status,
        is_primary=new.is_primary,
        created_at=new.created_at,
        updated_at=now,
        metadata_key=new.metadata_key,
        job_id=job_id,
    )
    row = version.as_image_set(new.grouping, new.summary)
    if uow.image_sets.get(new.datastore_id, new.image_set_id) is None:
        uow.image_sets.add(row)
    else:
        uow.image_sets.update(row)
    uow.image_sets.add_version(version)
    emit.version_written(uow, row)
    if new.catalog is not None:
        if new.is_primary:
            uow.catalog.put_image_set(new.datastore_id, new.image_set_id, new.version_id, new.catalog, now)
        else:
            uow.catalog.remove_image_set(new.datastore_id, new.image_set_id)
    return version


def current(uow: UnitOfWork, image_set: ImageSet) -> ImageSetVersion:
    """The latest version row of an image set (it always exists for a committed image set)."""
    version = uow.image_sets.get_version(image_set.datastore_id, image_set.image_set_id, image_set.version_id)
    if version is None:  # pragma: no cover - the index keeps them together
        raise LookupError(f"image set {image_set.image_set_id} has no version {image_set.version_id}")
    return version
