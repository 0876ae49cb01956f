"""The tier rules of the guide (23009-23052): which operations are accesses, and when an image set is idle.

New image sets (import, STOW-RS, CopyImageSet) start in Frequent Access; an image set not accessed for 30
consecutive days (``archive_after_days``) moves to Archive Instant Access and stays there until it is accessed
again (guide 23024). Accesses (23026-23030) are GetImageSetMetadata, GetImageFrame, every DICOMweb WADO-RS
retrieval, CopyImageSet (the copied image set, and the destination when one is named) and UpdateImageSetMetadata;
they move an archived image set back and keep a frequent one there for the next 30 days (23032). Everything else
is not an access (23034-23040): data store operations, listings (ListDICOMImportJobs, ListImageSetVersions,
ListTagsForResource), searches (SearchImageSets, QIDO-RS), GetImageSet, TagResource / UntagResource, deletes;
STOW-RS stores, it does not read.

An image set never accessed is idle since its creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from openhi.imagesets.model import ImageSet

DEFAULT_ARCHIVE_AFTER_DAYS = 30.0

# Native API operations that are accesses (guide 23026-23030).
NATIVE_ACCESS_OPERATIONS = frozenset({"GetImageSetMetadata", "GetImageFrame", "CopyImageSet", "UpdateImageSetMetadata"})
# DICOMweb WADO-RS retrievals (guide 23028: "any DICOMweb WADO-RS operation"), rendered resources included.
WADO_ACCESS_OPERATIONS = frozenset(
    {
        "GetDICOMStudy",
        "GetDICOMStudyMetadata",
        "GetDICOMSeries",
        "GetDICOMSeriesMetadata",
        "GetDICOMSeriesRendered",
        "GetDICOMSeriesThumbnail",
        "GetDICOMInstance",
        "GetDICOMInstanceMetadata",
        "GetDICOMInstanceRendered",
        "GetDICOMInstanceThumbnail",
        "GetDICOMInstanceFrames",
        "GetDICOMFramesRendered",
        "GetDICOMFramesThumbnail",
        "GetDICOMBulkdata",
    }
)
ACCESS_OPERATIONS = NATIVE_ACCESS_OPERATIONS | WADO_ACCESS_OPERATIONS


def counts_as_access(operation: str) -> bool:
    """True when the operation (native or DICOMweb, by its name) is an access of guide 23026-23030."""
    return operation in ACCESS_OPERATIONS


@dataclass(frozen=True)
class TierPolicy:
    """When an image set is idle: not accessed for ``archive_after`` (guide 23024: 30 days)."""

    archive_after: timedelta = timedelta(days=DEFAULT_ARCHIVE_AFTER_DAYS)

    @classmethod
    def days(cls, archive_after_days: float) -> TierPolicy:
        """The policy of the ``archive_after_days`` setting (fractions allowed); must be positive."""
        if not archive_after_days > 0:
            raise ValueError(f"archive_after_days must be positive, got {archive_after_days!r}")
        return cls(timedelta(days=archive_after_days))

    def cutoff(self, now: datetime) -> datetime:
        """Image sets not accessed since before this moment are idle at ``now``."""
        return now - self.archive_after

    @staticmethod
    def idle_since(image_set: ImageSet) -> datetime:
        """The last access, or the creation when the image set was never accessed."""
        return image_set.last_accessed_at or image_set.created_at

    def is_idle(self, image_set: ImageSet, now: datetime) -> bool:
        """True when the image set has not been accessed for ``archive_after`` at ``now``."""
        return self.idle_since(image_set) < self.cutoff(now)
