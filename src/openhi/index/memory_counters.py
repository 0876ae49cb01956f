"""The counters of the resource metrics over ``MemoryState`` (the contract reference of ``sql/counters.py``).

The repositories that change counted rows call the functions of this module in the same unit of work (so a
failed unit of work, restored from its snapshot by ``MemoryIndex.run``, leaves the counters as they were):

- image sets (``memory_image_sets.py``): ``image_set_usage`` before the change, ``record_image_set`` after;
  ``add_frame_bytes`` for each frame actually added, ``clear_frame_bytes`` when the frames are forgotten;
- the catalog (``memory_catalog.py``): ``catalog_usage`` of the touched studies before, ``record_catalog`` after;
- data stores (``memory.py``): ``apply`` of the status change.

What each row is worth is ``openhi.metrics.usage``. ``MemoryCounterRepository`` reads them back, moves an image
set's bytes between storage tiers (``move_tier``, for the tier service) and recounts everything from the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from openhi.imagesets.model import ImageSetState
from openhi.imports.model import FileStatus, JobStatus
from openhi.index.memory_state import MemoryState
from openhi.metrics.usage import (
    FREQUENT_ACCESS,
    STORAGE_TIERS,
    CatalogUsage,
    Counter,
    DatastoreUsage,
    ImageSetUsage,
    ImportProgress,
    counts_of,
    datastore_status_counter,
    difference,
)


def apply(state: MemoryState, datastore_id: str, changes: Mapping[str, int]) -> None:
    """Add ``changes`` to the data store's counters."""
    for name, change in changes.items():
        key = (datastore_id, str(name))
        state.counters[key] = state.counters.get(key, 0) + change


def image_set_usage(state: MemoryState, datastore_id: str, image_set_id: str) -> ImageSetUsage | None:
    """What the image set counts for now (None: no such row)."""
    row = state.image_sets.get((datastore_id, image_set_id))
    if row is None:
        return None
    size, tier = state.image_set_usage.get((datastore_id, image_set_id), (0, FREQUENT_ACCESS))
    return ImageSetUsage(live=row.state != ImageSetState.DELETED, primary=row.is_primary, size=size, tier=tier)


def record_image_set(state: MemoryState, datastore_id: str, image_set_id: str, before: ImageSetUsage | None) -> None:
    """Count the change of the image set since ``before`` (its ``image_set_usage`` before the change)."""
    after = image_set_usage(state, datastore_id, image_set_id)
    apply(state, datastore_id, difference(counts_of(before), counts_of(after)))


def add_frame_bytes(state: MemoryState, datastore_id: str, image_set_id: str, size: int) -> None:
    """A frame of ``size`` bytes was added to the image set."""
    before = image_set_usage(state, datastore_id, image_set_id)
    current, tier = state.image_set_usage.get((datastore_id, image_set_id), (0, FREQUENT_ACCESS))
    state.image_set_usage[(datastore_id, image_set_id)] = (current + size, tier)
    record_image_set(state, datastore_id, image_set_id, before)


def clear_frame_bytes(state: MemoryState, datastore_id: str, image_set_id: str) -> None:
    """The image set references no frame any more."""
    key = (datastore_id, image_set_id)
    if key in state.image_set_usage:
        before = image_set_usage(state, datastore_id, image_set_id)
        state.image_set_usage[key] = (0, state.image_set_usage[key][1])
        record_image_set(state, datastore_id, image_set_id, before)


def move_tier(state: MemoryState, datastore_id: str, image_set_id: str, tier: str) -> bool:
    """Count the image set's bytes in ``tier`` from now on; True when they were counted in another tier."""
    if tier not in STORAGE_TIERS:
        raise ValueError(f"unknown storage tier {tier!r}; expected one of {STORAGE_TIERS}")
    before = image_set_usage(state, datastore_id, image_set_id)
    if before is None or before.tier == tier:
        return False
    state.image_set_usage[(datastore_id, image_set_id)] = (before.size, str(tier))
    record_image_set(state, datastore_id, image_set_id, before)
    return True


def catalog_usage(state: MemoryState, datastore_id: str, image_set_id: str, study_uids: Iterable[str]) -> CatalogUsage:
    """The image set's series and instance rows and the study rows of ``study_uids`` (the touched studies)."""
    return CatalogUsage(
        studies=sum(1 for uid in set(study_uids) if (datastore_id, uid) in state.catalog_studies),
        series=sum(1 for key in state.catalog_series if key[:2] == (datastore_id, image_set_id)),
        instances=sum(1 for key in state.catalog_instances if key[:2] == (datastore_id, image_set_id)),
    )


def record_catalog(
    state: MemoryState, datastore_id: str, image_set_id: str, study_uids: Iterable[str], before: CatalogUsage
) -> None:
    """Count the change of the image set's catalog rows since ``before`` (same ``study_uids``)."""
    after = catalog_usage(state, datastore_id, image_set_id, study_uids)
    apply(state, datastore_id, difference(before.counts(), after.counts()))


def _recounted(state: MemoryState) -> dict[tuple[str, str], int]:
    counters: dict[tuple[str, str], int] = defaultdict(int)
    for datastore in state.datastores.values():
        counters[(datastore.datastore_id, datastore_status_counter(datastore.status))] += 1
    for datastore_id, image_set_id in state.image_sets:
        for name, value in counts_of(image_set_usage(state, datastore_id, image_set_id)).items():
            counters[(datastore_id, str(name))] += value
    for datastore_id, _ in state.catalog_studies:
        counters[(datastore_id, Counter.STUDIES.value)] += 1
    for datastore_id, _, _ in state.catalog_series:
        counters[(datastore_id, Counter.SERIES.value)] += 1
    for datastore_id, _, _, _ in state.catalog_instances:
        counters[(datastore_id, Counter.INSTANCES.value)] += 1
    return dict(counters)


@dataclass(frozen=True)
class MemoryCounterRepository:
    """``CounterRepository`` over the state."""

    state: MemoryState

    def totals(self) -> list[DatastoreUsage]:
        by_datastore: dict[str, dict[str, int]] = defaultdict(dict)
        for (datastore_id, name), value in self.state.counters.items():
            by_datastore[datastore_id][name] = value
        return [DatastoreUsage.of(ds, counters) for ds, counters in sorted(by_datastore.items())]

    def move_tier(self, datastore_id: str, image_set_id: str, tier: str) -> bool:
        return move_tier(self.state, datastore_id, image_set_id, tier)

    def import_progress(self) -> list[ImportProgress]:
        found = []
        for job in sorted(self.state.import_jobs.values(), key=lambda j: j.job_id):
            if job.status != JobStatus.IN_PROGRESS:
                continue
            files = [f for (of, _), f in self.state.import_files.items() if of == job.job_id]
            done = [f for f in files if f.status != FileStatus.PENDING]
            found.append(
                ImportProgress(
                    datastore_id=job.datastore_id,
                    job_id=job.job_id,
                    submitted_at=job.submitted_at,
                    files_total=len(files),
                    files_done=len(done),
                    files_failed=sum(1 for f in done if f.status == FileStatus.FAILED),
                    bytes_total=sum(f.size for f in files),
                    bytes_done=sum(f.size for f in done),
                )
            )
        return found

    def recount(self) -> None:
        sizes: dict[tuple[str, str], int] = defaultdict(int)
        for (datastore_id, image_set_id, _), frame in self.state.image_set_frames.items():
            sizes[(datastore_id, image_set_id)] += frame.size
        self.state.image_set_usage = {
            key: (sizes.get(key, 0), self.state.image_set_usage.get(key, (0, FREQUENT_ACCESS))[1])
            for key in self.state.image_sets
        }
        self.state.counters = _recounted(self.state)
