"""Resource metrics (guide 20136-20175) and import job progress, read from the index at scrape time.

``UsageReader`` reads the maintained counters and the running import jobs in one read-only unit of work
(``uow.counters.totals`` is one GROUP BY over at most 16 rows per counter; ``import_progress`` one over the files
of running jobs) and keeps the result for ``ttl`` seconds, so scrapes by several Prometheus servers cost one read.
``ResourceCollector`` turns it into gauges, with the guide's dimensions (20176-20187) as labels:

account level (``account_id``)
    ``openhi_datastores{status}`` (DataStoreCount, every status; ACTIVE is the guide's), ``openhi_image_sets``
    (ImageSetCount), ``openhi_storage_bytes{storage_tier}`` (StorageBytes);
data store level (``datastore_id``, data stores not DELETED)
    ``openhi_datastore_image_sets`` (TotalImageSetCount), ``openhi_datastore_primary_image_sets``
    (PrimaryImageSetCount), ``openhi_datastore_small_image_sets`` (SmallImageSetCount, under 5 MB),
    ``openhi_datastore_storage_bytes{storage_tier}`` (StorageBytes), ``openhi_datastore_dicom_studies`` /
    ``_dicom_series`` / ``_dicom_instances`` (DICOMStudyCount, DICOMSeriesCount, DICOMInstanceCount),
    ``openhi_datastore_structured_storage_bytes`` (StructuredStorageBytes);
import jobs (``datastore_id``, ``job_id``, IN_PROGRESS jobs only)
    ``openhi_import_job_files`` / ``_files_done`` / ``_files_failed``, ``openhi_import_job_bytes`` /
    ``_bytes_done`` and ``openhi_import_job_bytes_per_second`` (average since submission).

``storage_tier`` takes the guide's StorageTier dimension values FrequentAccessStorage and
ArchiveInstantAccessStorage; the guide's AllStorage is their sum (``sum without (storage_tier)``), not a series of
its own, so that summing a family never counts bytes twice. When the index cannot be read the collector answers
``openhi_resource_metrics_up 0`` and no resource series, so a scrape still succeeds and an alert can fire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openhi.clock import Clock, utc_now
from openhi.datastores.model import DatastoreStatus
from openhi.index.port import Index, UnitOfWork
from openhi.metrics.usage import (
    ARCHIVE_INSTANT_ACCESS,
    FREQUENT_ACCESS,
    STORAGE_TIERS,
    DatastoreUsage,
    ImportProgress,
)

log = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
# The guide's StorageTier dimension values (20182-20187) of the model's StorageTier enum.
TIER_LABELS = {FREQUENT_ACCESS: "FrequentAccessStorage", ARCHIVE_INSTANT_ACCESS: "ArchiveInstantAccessStorage"}


@dataclass(frozen=True)
class UsageSnapshot:
    """What one read of the index found."""

    datastores: list[DatastoreUsage]
    imports: list[ImportProgress]
    read_at: datetime


class UsageReader:
    """Reads the counters and the running jobs, at most once per ``ttl`` seconds (thread-safe)."""

    def __init__(
        self,
        index: Index,
        clock: Clock = utc_now,
        ttl: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._clock = clock
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, UsageSnapshot] | None = None

    def read(self) -> UsageSnapshot:
        """The cached snapshot while fresh, else a new one (concurrent callers wait for the same read)."""
        with self._lock:
            now = self._monotonic()
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]

            def work(uow: UnitOfWork) -> tuple[list[DatastoreUsage], list[ImportProgress]]:
                return uow.counters.totals(), uow.counters.import_progress()

            datastores, imports = self._index.run(work, readonly=True)
            snapshot = UsageSnapshot(datastores, imports, self._clock())
            self._cached = (now, snapshot)
            return snapshot


def _gauge(name: str, documentation: str, labels: Iterable[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class ResourceCollector(Collector):
    """The gauges of the module docstring, from ``UsageReader``."""

    def __init__(self, reader: UsageReader, account_id: str) -> None:
        self._reader = reader
        self._account_id = account_id

    def describe(self) -> Iterable[Metric]:
        """Names only, so that registering the collector reads nothing."""
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        """Read (or reuse) the snapshot and fill the families."""
        up = _gauge("openhi_resource_metrics_up", "1 when the resource metrics could be read from the index", [])
        try:
            snapshot = self._reader.read()
        except Exception:
            log.exception("resource metrics: the index could not be read")
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *self._families(snapshot)]

    def _families(self, snapshot: UsageSnapshot | None = None) -> Iterator[Metric]:
        account = [self._account_id]
        datastores = snapshot.datastores if snapshot else []
        statuses = _gauge("openhi_datastores", "Data stores by status (DataStoreCount)", ["account_id", "status"])
        for status in DatastoreStatus:
            statuses.add_metric([*account, status.value], sum(1 for d in datastores if d.status == status.value))
        image_sets = _gauge("openhi_image_sets", "Image sets of every data store (ImageSetCount)", ["account_id"])
        storage = _gauge(
            "openhi_storage_bytes",
            "Bytes of the image sets of every data store, by storage tier (StorageBytes)",
            ["account_id", "storage_tier"],
        )
        if snapshot is not None:
            image_sets.add_metric(account, sum(d.image_sets for d in datastores))
            for tier in STORAGE_TIERS:
                storage.add_metric([*account, TIER_LABELS[tier]], sum(d.storage_bytes.get(tier, 0) for d in datastores))
        yield from (statuses, image_sets, storage)
        yield from self._datastore_families([d for d in datastores if d.status != DatastoreStatus.DELETED.value])
        yield from self._import_families(snapshot)

    def _datastore_families(self, datastores: list[DatastoreUsage]) -> Iterator[Metric]:
        plain: list[tuple[str, str, Callable[[DatastoreUsage], int]]] = [
            ("image_sets", "Image sets of the data store (TotalImageSetCount)", lambda d: d.image_sets),
            ("primary_image_sets", "Primary image sets (PrimaryImageSetCount)", lambda d: d.primary_image_sets),
            ("small_image_sets", "Image sets under 5 MB (SmallImageSetCount)", lambda d: d.small_image_sets),
            ("dicom_studies", "DICOM studies (DICOMStudyCount)", lambda d: d.studies),
            ("dicom_series", "DICOM series (DICOMSeriesCount)", lambda d: d.series),
            ("dicom_instances", "DICOM instances (DICOMInstanceCount)", lambda d: d.instances),
            (
                "structured_storage_bytes",
                "Index storage of the DICOM resources, as the guide estimates it (StructuredStorageBytes)",
                lambda d: d.structured_storage_bytes,
            ),
        ]
        for suffix, documentation, value in plain:
            family = _gauge(f"openhi_datastore_{suffix}", documentation, ["datastore_id"])
            for datastore in datastores:
                family.add_metric([datastore.datastore_id], value(datastore))
            yield family
        storage = _gauge(
            "openhi_datastore_storage_bytes",
            "Bytes of the data store's image sets, by storage tier (StorageBytes)",
            ["datastore_id", "storage_tier"],
        )
        for datastore in datastores:
            for tier in STORAGE_TIERS:
                storage.add_metric([datastore.datastore_id, TIER_LABELS[tier]], datastore.storage_bytes.get(tier, 0))
        yield storage

    def _import_families(self, snapshot: UsageSnapshot | None) -> Iterator[Metric]:
        jobs = snapshot.imports if snapshot else []
        now = snapshot.read_at if snapshot else None
        values: list[tuple[str, str, Callable[[ImportProgress], float]]] = [
            ("files", "Input files found by a running import job", lambda j: j.files_total),
            ("files_done", "Input files processed (stored or failed) by a running import job", lambda j: j.files_done),
            ("files_failed", "Input files a running import job could not import", lambda j: j.files_failed),
            ("bytes", "Input bytes found by a running import job", lambda j: j.bytes_total),
            ("bytes_done", "Input bytes processed by a running import job", lambda j: j.bytes_done),
            (
                "bytes_per_second",
                "Input bytes processed per second since the job was submitted",
                lambda j: j.bytes_per_second(now) if now else 0.0,
            ),
        ]
        for suffix, documentation, value in values:
            family = _gauge(f"openhi_import_job_{suffix}", documentation, ["datastore_id", "job_id"])
            for job in jobs:
                family.add_metric([job.datastore_id, job.job_id], value(job))
            yield family
