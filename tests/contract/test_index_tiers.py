"""Contract suite of ``StorageTierRepository`` (storage tiers, guide 23009-23052) over memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from openhi.dicom.normalize import GroupingKey
from openhi.ids import new_id
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetState,
    ImageSetVersion,
    ImageSetWorkflowStatus,
    StorageTier,
)
from openhi.index.port import ImageSetAccess, Index, UnitOfWork

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
DAY = timedelta(days=1)
FREQUENT, ARCHIVE = StorageTier.FREQUENT_ACCESS, StorageTier.ARCHIVE_INSTANT_ACCESS
NewDatastore = Callable[[], str]
NO_GROUPING = GroupingKey(None, None, None, None, None, None, None)


def add_image_set(index: Index, datastore_id: str, *, created_at: datetime = T0, image_set_id: str = "") -> ImageSet:
    image_set = ImageSet(
        datastore_id=datastore_id,
        image_set_id=image_set_id or new_id(),
        version_id=1,
        state=ImageSetState.ACTIVE,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=True,
        created_at=created_at,
        updated_at=created_at,
        grouping=NO_GROUPING,
    )
    index.run(lambda uow: uow.image_sets.add(image_set))
    return image_set


def get(index: Index, image_set: ImageSet) -> ImageSet:
    found = index.run(lambda uow: uow.image_sets.get(image_set.datastore_id, image_set.image_set_id), readonly=True)
    assert found is not None
    return found


def access(index: Index, *accesses: tuple[ImageSet, datetime]) -> list[tuple[str, str]]:
    rows = [ImageSetAccess(s.datastore_id, s.image_set_id, at) for s, at in accesses]
    return index.run(lambda uow: uow.tiers.record_access(rows))


def archive(index: Index, image_set: ImageSet, cutoff: datetime, at: datetime, version: int = 1) -> bool:
    return index.run(lambda uow: uow.tiers.archive(image_set.datastore_id, image_set.image_set_id, version, cutoff, at))


def restore(index: Index, image_set: ImageSet, at: datetime) -> bool:
    return index.run(lambda uow: uow.tiers.restore(image_set.datastore_id, image_set.image_set_id, at))


def ids(image_sets: list[ImageSet]) -> list[str]:
    return [s.image_set_id for s in image_sets]


def set_state(index: Index, image_set: ImageSet, state: ImageSetState, status: ImageSetWorkflowStatus) -> None:
    def work(uow: UnitOfWork) -> bool:
        return uow.image_sets.set_state(
            image_set.datastore_id, image_set.image_set_id, 1, [ImageSetState.ACTIVE], state, status, None, T0
        )

    assert index.run(work)


def test_a_new_image_set_is_frequent_and_never_accessed(index: Index, new_datastore: NewDatastore) -> None:
    image_set = get(index, add_image_set(index, new_datastore()))
    assert (image_set.storage_tier, image_set.last_accessed_at) == (FREQUENT, None)


def test_record_access_keeps_the_latest_time_and_reports_archived_ones(
    index: Index, new_datastore: NewDatastore
) -> None:
    ds = new_datastore()
    first, second = add_image_set(index, ds), add_image_set(index, ds)
    unknown = replace(first, image_set_id=new_id())
    assert access(index, (first, T0 + 2 * DAY), (unknown, T0)) == []
    assert access(index, (first, T0 + DAY)) == []  # an older access (another process flushing late) is ignored
    assert get(index, first).last_accessed_at == T0 + 2 * DAY
    assert archive(index, second, cutoff=T0 + DAY, at=T0 + 3 * DAY)
    assert access(index, (second, T0 + 4 * DAY), (first, T0 + 4 * DAY)) == [(ds, second.image_set_id)]
    assert get(index, second).last_accessed_at == T0 + 4 * DAY
    assert get(index, second).storage_tier == ARCHIVE  # recording an access does not move anything


def test_idle_uses_the_last_access_or_the_creation(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    old, young = add_image_set(index, ds), add_image_set(index, ds, created_at=T0 + 16 * DAY)
    accessed = add_image_set(index, ds)
    access(index, (accessed, T0 + 20 * DAY))
    cutoff = T0 + 15 * DAY
    found = index.run(lambda uow: uow.tiers.idle(cutoff, None, 10), readonly=True)
    assert ids(found) == [old.image_set_id]
    assert index.run(lambda uow: uow.tiers.idle(T0, None, 10), readonly=True) == []  # strictly before the cutoff
    later = index.run(lambda uow: uow.tiers.idle(T0 + 21 * DAY, None, 10), readonly=True)
    assert sorted(ids(later)) == sorted([old.image_set_id, young.image_set_id, accessed.image_set_id])


def test_idle_leaves_out_locked_deleted_and_archived_image_sets_and_pages(
    index: Index, new_datastore: NewDatastore
) -> None:
    ds = new_datastore()
    rows = [add_image_set(index, ds) for _ in range(5)]
    set_state(index, rows[0], ImageSetState.LOCKED, ImageSetWorkflowStatus.UPDATING)
    set_state(index, rows[1], ImageSetState.DELETED, ImageSetWorkflowStatus.DELETED)
    assert archive(index, rows[2], T0 + DAY, T0 + DAY)
    expected = sorted((ds, s.image_set_id) for s in rows[3:])
    page = index.run(lambda uow: uow.tiers.idle(T0 + DAY, None, 1), readonly=True)
    assert [(s.datastore_id, s.image_set_id) for s in page] == expected[:1]
    after = expected[0]
    rest = index.run(lambda uow: uow.tiers.idle(T0 + DAY, after, 10), readonly=True)
    assert [(s.datastore_id, s.image_set_id) for s in rest] == expected[1:]


def test_archive_is_a_compare_and_set(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    image_set = add_image_set(index, ds)
    assert not archive(index, image_set, cutoff=T0, at=T0 + DAY)  # not idle: created at the cutoff
    assert not archive(index, image_set, cutoff=T0 + DAY, at=T0 + DAY, version=2)  # a newer version exists
    access(index, (image_set, T0 + 2 * DAY))
    assert not archive(index, image_set, cutoff=T0 + DAY, at=T0 + 3 * DAY)  # accessed since the cutoff
    assert archive(index, image_set, cutoff=T0 + 3 * DAY, at=T0 + 3 * DAY)
    assert not archive(index, image_set, cutoff=T0 + 3 * DAY, at=T0 + 3 * DAY)  # already archived
    moved = get(index, image_set)
    assert (moved.storage_tier, moved.last_accessed_at) == (ARCHIVE, T0 + 2 * DAY)
    locked = add_image_set(index, ds)
    set_state(index, locked, ImageSetState.LOCKED, ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS)
    assert not archive(index, locked, cutoff=T0 + DAY, at=T0 + DAY)


def test_restore_is_a_compare_and_set_that_spares_deletes(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    image_set, deleting = add_image_set(index, ds), add_image_set(index, ds)
    assert not restore(index, image_set, T0)  # not archived
    for row in (image_set, deleting):
        assert archive(index, row, T0 + DAY, T0 + DAY)
    set_state(index, deleting, ImageSetState.LOCKED, ImageSetWorkflowStatus.DELETING)
    assert not restore(index, deleting, T0 + 2 * DAY)
    assert restore(index, image_set, T0 + 2 * DAY)
    assert get(index, image_set).storage_tier == FREQUENT
    assert not restore(index, image_set, T0 + 2 * DAY)


def test_accessed_while_archived(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    quiet, touched, accessed_before = add_image_set(index, ds), add_image_set(index, ds), add_image_set(index, ds)
    access(index, (accessed_before, T0 + DAY))
    for row in (quiet, touched, accessed_before):
        assert archive(index, row, T0 + 5 * DAY, T0 + 5 * DAY)
    assert index.run(lambda uow: uow.tiers.accessed_while_archived(10), readonly=True) == []
    access(index, (touched, T0 + 6 * DAY))
    found = index.run(lambda uow: uow.tiers.accessed_while_archived(10), readonly=True)
    assert ids(found) == [touched.image_set_id]
    assert restore(index, touched, T0 + 7 * DAY)
    assert index.run(lambda uow: uow.tiers.accessed_while_archived(10), readonly=True) == []


def test_held_elsewhere_counts_other_live_image_sets_in_the_tier(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    mover, frequent, archived, deleted = (add_image_set(index, ds) for _ in range(4))
    frames = [new_id() for _ in range(4)]
    doc = f"datastores/{ds}/metadata/{new_id()}.json.gz"
    own_doc = f"datastores/{ds}/metadata/{new_id()}.json.gz"

    def setup(uow: UnitOfWork) -> None:
        refs = [(mover, f) for f in frames] + [(frequent, frames[0]), (archived, frames[1]), (deleted, frames[2])]
        uow.image_sets.add_frames([FrameRef(ds, s.image_set_id, f, "1.2.840.10008.1.2.1", 10) for s, f in refs])
        for row, key in ((mover, own_doc), (frequent, doc), (archived, doc)):
            uow.image_sets.add_version(
                ImageSetVersion(ds, row.image_set_id, 2, ImageSetState.ACTIVE, row.workflow_status, True, T0, T0, key)
            )

    index.run(setup)
    assert archive(index, archived, T0 + DAY, T0 + DAY)
    set_state(index, deleted, ImageSetState.DELETED, ImageSetWorkflowStatus.DELETED)

    def held(tier: StorageTier) -> set[str]:
        return index.run(
            lambda uow: uow.tiers.held_elsewhere(ds, mover.image_set_id, tier, frames, [doc, own_doc]), readonly=True
        )

    assert held(FREQUENT) == {frames[0], doc}
    assert held(ARCHIVE) == {frames[1], doc}


def test_image_set_writes_keep_the_tier_columns(index: Index, new_datastore: NewDatastore) -> None:
    ds = new_datastore()
    image_set = add_image_set(index, ds)
    access(index, (image_set, T0 + DAY))
    assert archive(index, image_set, T0 + 2 * DAY, T0 + 2 * DAY)
    # A new version mirrored on the row (as write_version does) carries the model's defaults: they are not written.
    index.run(lambda uow: uow.image_sets.update(replace(image_set, version_id=2, updated_at=T0 + 3 * DAY)))
    updated = get(index, image_set)
    assert (updated.version_id, updated.storage_tier, updated.last_accessed_at) == (2, ARCHIVE, T0 + DAY)
    with_version = index.run(lambda uow: uow.image_sets.get_with_version(ds, image_set.image_set_id), readonly=True)
    assert with_version is None or with_version[0].storage_tier == ARCHIVE
