"""Image set entities and enums.

Guide 275-340, 4248-4406; model shapes ImageSetProperties and GetImageSetResponse.

An image set is versioned: every change writes a new immutable version whose metadata document lives in
the blob store (gzip JSON, key in ``ImageSetVersion.metadata_key``); the ``ImageSet`` row mirrors the latest
version and carries the grouping elements (guide 4270-4290) that decide where an imported instance goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from openhi.dicom.normalize import GroupingKey


class ImageSetState(StrEnum):
    """Model enum ``ImageSetState``."""

    ACTIVE = "ACTIVE"
    LOCKED = "LOCKED"
    DELETED = "DELETED"


class ImageSetWorkflowStatus(StrEnum):
    """Model enum ``ImageSetWorkflowStatus``."""

    CREATED = "CREATED"
    COPIED = "COPIED"
    COPYING = "COPYING"
    COPYING_WITH_READ_ONLY_ACCESS = "COPYING_WITH_READ_ONLY_ACCESS"
    COPY_FAILED = "COPY_FAILED"
    UPDATING = "UPDATING"
    UPDATED = "UPDATED"
    UPDATE_FAILED = "UPDATE_FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"


@dataclass(frozen=True)
class ImageSet:
    """The current state of an image set (its latest version)."""

    datastore_id: str
    image_set_id: str
    version_id: int
    state: ImageSetState
    workflow_status: ImageSetWorkflowStatus
    is_primary: bool
    created_at: datetime
    updated_at: datetime
    grouping: GroupingKey
    deleted_at: datetime | None = None
    message: str | None = None


@dataclass(frozen=True)
class ImageSetVersion:
    """One immutable version of an image set."""

    datastore_id: str
    image_set_id: str
    version_id: int
    state: ImageSetState
    workflow_status: ImageSetWorkflowStatus
    is_primary: bool
    created_at: datetime
    updated_at: datetime
    metadata_key: str
    message: str | None = None
    job_id: str | None = None

    def as_image_set(self, grouping: GroupingKey) -> ImageSet:
        """The image set row that mirrors this version when it is the latest."""
        return ImageSet(
            datastore_id=self.datastore_id,
            image_set_id=self.image_set_id,
            version_id=self.version_id,
            state=self.state,
            workflow_status=self.workflow_status,
            is_primary=self.is_primary,
            created_at=self.created_at,
            updated_at=self.updated_at,
            grouping=grouping,
            message=self.message,
        )


@dataclass(frozen=True)
class FrameRef:
    """Where one image frame of an image set is stored, and in which syntax."""

    datastore_id: str
    image_set_id: str
    frame_id: str
    stored_transfer_syntax: str
    size: int
