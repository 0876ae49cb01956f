"""Image set entities and enums.

Guide 275-340, 4248-4406; model shapes ImageSetProperties and GetImageSetResponse.

An image set is versioned: every change writes a new immutable version whose metadata document lives in
the blob store (gzip JSON, key in ``ImageSetVersion.metadata_key``); the ``ImageSet`` row mirrors the latest
version and carries the grouping elements (guide 4270-4290) that decide where an imported instance goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from openhi.dicom.normalize import GroupingKey
from openhi.search.criteria import study_datetime_key


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


class StorageTier(StrEnum):
    """Model enum ``StorageTier``: where an image set's bytes live (guide 23009-23052, ``openhi.tiers``)."""

    FREQUENT_ACCESS = "FREQUENT_ACCESS"
    ARCHIVE_INSTANT_ACCESS = "ARCHIVE_INSTANT_ACCESS"


def _text(level: Mapping[str, Any], keyword: str) -> str | None:
    value = level.get(keyword)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ImageSetSummary:
    """What SearchImageSets shows of an image set beyond its grouping elements (model shape ``DICOMTags``).

    Taken from the latest version's metadata document when the version is written; an image set whose
    summary is unknown (rows written before the index had it) has ``ImageSet.summary`` None. A summary with
    every field empty is the same as None: the index reads it back as None.
    """

    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_description: str | None = None
    study_time: str | None = None
    series_modality: str | None = None
    series_body_part: str | None = None
    instance_count: int = 0

    @property
    def is_empty(self) -> bool:
        """True when nothing is known (every text absent, no instance)."""
        return all(getattr(self, f.name) in (None, 0) for f in fields(self))

    @classmethod
    def from_document(cls, document: Mapping[str, Any], series_instance_uid: str | None = None) -> ImageSetSummary:
        """The summary of a metadata document (guide 4330-4395); the series named, else the first one."""
        patient = document.get("Patient", {}).get("DICOM", {})
        study = document.get("Study", {})
        series_by_uid: Mapping[str, Any] = study.get("Series", {})
        series: Mapping[str, Any] = series_by_uid.get(series_instance_uid or "") or next(
            iter(series_by_uid.values()), {}
        )
        series_dicom = series.get("DICOM", {})
        return cls(
            patient_name=_text(patient, "PatientName"),
            patient_birth_date=_text(patient, "PatientBirthDate"),
            patient_sex=_text(patient, "PatientSex"),
            study_description=_text(study.get("DICOM", {}), "StudyDescription"),
            study_time=_text(study.get("DICOM", {}), "StudyTime"),
            series_modality=_text(series_dicom, "Modality"),
            series_body_part=_text(series_dicom, "BodyPartExamined"),
            instance_count=sum(len(s.get("Instances", {})) for s in series_by_uid.values()),
        )


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
    summary: ImageSetSummary | None = None
    # Storage tiers (guide 23009-23052): written only through ``uow.tiers`` (a new image set starts frequently
    # accessed and never accessed; ``add`` / ``update`` of the image set row leave both as stored).
    storage_tier: StorageTier = StorageTier.FREQUENT_ACCESS
    last_accessed_at: datetime | None = None

    @property
    def study_datetime(self) -> str | None:
        """Sortable study date and time ``YYYYMMDDHHMMSS.ffffff`` (search); None without a valid Study Date."""
        return study_datetime_key(self.grouping.study_date, self.summary.study_time if self.summary else None)


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

    def as_image_set(self, grouping: GroupingKey, summary: ImageSetSummary | None = None) -> ImageSet:
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
            summary=summary,
        )


@dataclass(frozen=True)
class FrameRef:
    """Where one image frame of an image set is stored, and in which syntax."""

    datastore_id: str
    image_set_id: str
    frame_id: str
    stored_transfer_syntax: str
    size: int
