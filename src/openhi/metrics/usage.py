"""What the resource metrics count (guide 20136-20175), as counters the index maintains; pure.

The guide's account- and data-store-level metrics are sums over rows of the index. Scanning those rows at every
scrape would cost as much as the archive is large, so the index keeps named counters per data store instead
(``CounterRepository`` in ``index/port.py``), changed in the same unit of work as the rows they count by the
repository methods that change those rows. This module says what each change is worth:

- an image set contributes ``ImageSetUsage.counts()``: while it is not DELETED, 1 to ``image_sets``
  (TotalImageSetCount, and the account's ImageSetCount), 1 to ``primary_image_sets`` when it is primary, 1 to
  ``small_image_sets`` when its size is under 5 MB (guide 20158; 23030 bills such image sets as 5 MB), and its
  size to ``storage_bytes.{tier}``. The size of an image set is the bytes of the image frames it references
  (``FrameRef.size``, what GetImageFrame returns), so StorageBytes is "the sum of the sizes of all image sets"
  (guide 20145): a copy that shares frame blobs with its source counts them again, as the guide bills it.
- the QIDO-RS catalog contributes ``CatalogUsage.counts()``: study, series and instance rows of primary image
  sets (DICOMStudyCount, DICOMSeriesCount, DICOMInstanceCount). StructuredStorageBytes is the guide's own
  estimate of the index records behind them (guide 23046-23052: 1024 bytes a study, 830 a series, 680 an
  instance).
- a data store contributes 1 to ``datastore_status.{STATUS}`` (DataStoreCount, by status).

A change is the ``difference`` of what the row contributed before and after. Storage tiers are the model's
``StorageTier`` values; an image set starts in FREQUENT_ACCESS (guide 23021) and the tier service moves its bytes
with ``CounterRepository.move_tier``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

SMALL_IMAGE_SET_BYTES = 5 * 1024 * 1024  # guide 20158: "数据存储中小于 5MB 的影像集数量"
FREQUENT_ACCESS = "FREQUENT_ACCESS"  # model enum StorageTier
ARCHIVE_INSTANT_ACCESS = "ARCHIVE_INSTANT_ACCESS"
STORAGE_TIERS = (FREQUENT_ACCESS, ARCHIVE_INSTANT_ACCESS)
# Guide 23046-23052: approximate size of the index record of each DICOM resource.
STUDY_RECORD_BYTES = 1024
SERIES_RECORD_BYTES = 830
INSTANCE_RECORD_BYTES = 680


class Counter(StrEnum):
    """Counter names of the index (besides ``storage_bytes_counter`` and ``datastore_status_counter``)."""

    IMAGE_SETS = "image_sets"
    PRIMARY_IMAGE_SETS = "primary_image_sets"
    SMALL_IMAGE_SETS = "small_image_sets"
    STUDIES = "dicom_studies"
    SERIES = "dicom_series"
    INSTANCES = "dicom_instances"


STORAGE_PREFIX = "storage_bytes."
STATUS_PREFIX = "datastore_status."


def storage_bytes_counter(tier: str) -> str:
    """The counter of the bytes of a data store's image sets in ``tier``."""
    if tier not in STORAGE_TIERS:
        raise ValueError(f"unknown storage tier {tier!r}; expected one of {STORAGE_TIERS}")
    return STORAGE_PREFIX + tier


def datastore_status_counter(status: str) -> str:
    """The counter that is 1 while the data store is in ``status``."""
    return STATUS_PREFIX + status


def difference(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """``after - before`` per counter, zeros left out."""
    names = sorted(set(before) | set(after))
    changes = {name: after.get(name, 0) - before.get(name, 0) for name in names}
    return {name: change for name, change in changes.items() if change}


@dataclass(frozen=True)
class ImageSetUsage:
    """What one image set contributes to the counters of its data store."""

    live: bool  # not DELETED
    primary: bool
    size: int = 0  # bytes of the frames it references
    tier: str = FREQUENT_ACCESS

    def counts(self) -> dict[str, int]:
        """Its contribution; nothing once DELETED."""
        if not self.live:
            return {}
        return {
            Counter.IMAGE_SETS: 1,
            Counter.PRIMARY_IMAGE_SETS: int(self.primary),
            Counter.SMALL_IMAGE_SETS: int(self.size < SMALL_IMAGE_SET_BYTES),
            storage_bytes_counter(self.tier): self.size,
        }


def counts_of(usage: ImageSetUsage | None) -> dict[str, int]:
    """``usage.counts()``; nothing for an image set that is not there."""
    return {} if usage is None else usage.counts()


@dataclass(frozen=True)
class CatalogUsage:
    """Catalog rows: those of one image set (series, instances) and the study rows of the studies it touches."""

    studies: int = 0
    series: int = 0
    instances: int = 0

    def counts(self) -> dict[str, int]:
        """As counters."""
        return {Counter.STUDIES: self.studies, Counter.SERIES: self.series, Counter.INSTANCES: self.instances}


def structured_storage_bytes(studies: int, series: int, instances: int) -> int:
    """StructuredStorageBytes as the guide estimates it (23046-23052)."""
    return studies * STUDY_RECORD_BYTES + series * SERIES_RECORD_BYTES + instances * INSTANCE_RECORD_BYTES


@dataclass(frozen=True)
class DatastoreUsage:
    """The counters of one data store, read back (what the resource metrics show)."""

    datastore_id: str
    status: str | None = None  # the status whose counter is 1 (None: no data store row counted)
    image_sets: int = 0
    primary_image_sets: int = 0
    small_image_sets: int = 0
    storage_bytes: Mapping[str, int] = field(default_factory=dict)  # tier -> bytes, every tier present
    studies: int = 0
    series: int = 0
    instances: int = 0

    @property
    def structured_storage_bytes(self) -> int:
        """StructuredStorageBytes (guide 20172)."""
        return structured_storage_bytes(self.studies, self.series, self.instances)

    @classmethod
    def of(cls, datastore_id: str, counters: Mapping[str, int]) -> DatastoreUsage:
        """From counter name -> value (absent counters are 0)."""
        statuses = [
            name.removeprefix(STATUS_PREFIX) for name, v in counters.items() if name.startswith(STATUS_PREFIX) and v
        ]
        return cls(
            datastore_id=datastore_id,
            status=statuses[0] if len(statuses) == 1 else None,
            image_sets=counters.get(Counter.IMAGE_SETS, 0),
            primary_image_sets=counters.get(Counter.PRIMARY_IMAGE_SETS, 0),
            small_image_sets=counters.get(Counter.SMALL_IMAGE_SETS, 0),
            storage_bytes={tier: counters.get(storage_bytes_counter(tier), 0) for tier in STORAGE_TIERS},
            studies=counters.get(Counter.STUDIES, 0),
            series=counters.get(Counter.SERIES, 0),
            instances=counters.get(Counter.INSTANCES, 0),
        )


@dataclass(frozen=True)
class ImportProgress:
    """Progress of one running (IN_PROGRESS) import job, from its file rows."""

    datastore_id: str
    job_id: str
    submitted_at: datetime
    files_total: int  # input files found so far
    files_done: int  # processed: staged or failed
    files_failed: int
    bytes_total: int
    bytes_done: int

    def bytes_per_second(self, now: datetime) -> float:
        """Average input bytes processed per second since the job was submitted."""
        elapsed = (now - self.submitted_at).total_seconds()
        return self.bytes_done / elapsed if elapsed > 0 else 0.0
