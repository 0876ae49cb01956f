"""Contract suite of ``ImageSetRepository`` (image sets, versions, frames) over memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openhi.dicom.normalize import GroupingKey
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.imagesets.model import FrameRef, ImageSet, ImageSetState, ImageSetVersion, ImageSetWorkflowStatus
from openhi.index.port import Index, UnitOfWork

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
NewDatastore = Callable[[], str]


def grouping(series: str | None = None, **elements: str | None) -> GroupingKey:
    values: dict[str, str | None] = {
        "study_date": None,
        "accession_number": None,
        "patient_id": None,
        "study_instance_uid": None,
        "study_id": None,
        "series_instance_uid": series,
        "series_number": None,
    }
    values.update(elements)
    return GroupingKey(**values)


def full_grouping(series: str = "1.2.840.10008.9.2") -> GroupingKey:
    return grouping(
        series,
        study_date="20240501",
        accession_number="ACC-ünï 42",
        patient_id="PAT^1",
        study_instance_uid="1.2.840.10008.9.1",
        study_id="S1",
        series_number="7",
    )


def make_image_set(
    datastore_id: str,
    series: str | None = "1.2.3",
    *,
    created_at: datetime = T0,
    state: ImageSetState = ImageSetState.ACTIVE,
    is_primary: bool = True,
) -> ImageSet:
    return ImageSet(
        datastore_id=datastore_id,
        image_set_id=new_id(),
        version_id=1,
        state=state,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=is_primary,
        created_at=created_at,
        updated_at=created_at,
        grouping=grouping(series),
    )


def make_version(image_set: ImageSet, version_id: int) -> ImageSetVersion:
    return ImageSetVersion(
        datastore_id=image_set.datastore_id,
        image_set_id=image_set.image_set_id,
        version_id=version_id,
        state=ImageSetState.ACTIVE,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=True,
        created_at=T0 + timedelta(minutes=version_id),
        updated_at=T0 + timedelta(minutes=version_id),
        metadata_key=f"datastores/{image_set.datastore_id}/{image_set.image_set_id}/v{version_id}.json.gz",
    )


def add_image_sets(index: Index, *image_sets: ImageSet) -> None:
    def work(uow: UnitOfWork) -> None:
        for image_set in image_sets:
            uow.image_sets.add(image_set)

    index.run(work)


def get(index: Index, image_set: ImageSet) -> ImageSet | None:
    return index.run(lambda uow: uow.image_sets.get(image_set.datastore_id, image_set.image_set_id), readonly=True)


# -- image sets -----------------------------------------------------------------------------------------


def test_image_set_round_trip_keeps_every_field(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    full = ImageSet(
        datastore_id=store,
        image_set_id=new_id(),
        version_id=3,
        state=ImageSetState.LOCKED,
        workflow_status=ImageSetWorkflowStatus.UPDATING,
        is_primary=False,
        created_at=datetime(2024, 5, 1, 14, 30, 0, 1, tzinfo=PLUS_TWO),
        updated_at=datetime(2024, 5, 2, 9, 0, 59, 999999, tzinfo=UTC),
        grouping=full_grouping(),
        deleted_at=datetime(2024, 5, 3, 0, 0, 0, 5, tzinfo=PLUS_TWO),
        message="copied ünïcode",
    )
    bare = make_image_set(store, series=None)
    add_image_sets(index, full, bare)

    got = get(index, full)
    assert got == full
    assert got is not None
    assert got.grouping == full_grouping()
    for moment in (got.created_at, got.updated_at, got.deleted_at):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2024, 5, 1, 12, 30, 0, 1, tzinfo=UTC)
    assert got.updated_at.microsecond == 999999
    assert get(index, bare) == bare
    assert get(index, replace(full, datastore_id=other)) is None
    assert get(index, replace(full, image_set_id=new_id())) is None


def test_update_replaces_the_row(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    original, neighbour = make_image_set(store), make_image_set(store)
    add_image_sets(index, original, neighbour)
    changed = replace(
        original,
        version_id=2,
        state=ImageSetState.DELETED,
        workflow_status=ImageSetWorkflowStatus.DELETED,
        is_primary=False,
        updated_at=T0 + timedelta(hours=1, microseconds=3),
        grouping=full_grouping("9.9"),
        deleted_at=T0 + timedelta(hours=1),
        message="gone",
    )

    index.run(lambda uow: uow.image_sets.update(changed))

    assert get(index, changed) == changed
    assert get(index, neighbour) == neighbour
    cleared = replace(changed, grouping=grouping(None), deleted_at=None, message=None)
    index.run(lambda uow: uow.image_sets.update(cleared))
    assert get(index, cleared) == cleared
    stranger = make_image_set(store)
    index.run(lambda uow: uow.image_sets.update(stranger))  # no row: nothing happens
    assert get(index, stranger) is None


def test_adding_an_existing_image_set_or_one_without_datastore_conflicts(
    index: Index, new_datastore: NewDatastore
) -> None:
    store = new_datastore()
    original = make_image_set(store)
    add_image_sets(index, original)

    with pytest.raises(ConflictError):
        add_image_sets(index, replace(original, message="again"))
    with pytest.raises(ConflictError):
        add_image_sets(index, make_image_set(new_id()))
    assert get(index, original) == original


def test_exists_and_count_follow_the_state(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    active, locked = make_image_set(store), make_image_set(store, state=ImageSetState.LOCKED)
    deleted = make_image_set(store, state=ImageSetState.DELETED)
    add_image_sets(index, active, locked, deleted)

    assert index.run(lambda uow: uow.image_sets.count_in_datastore(store)) == 2
    assert index.run(lambda uow: uow.image_sets.exists(store, locked.image_set_id))
    assert not index.run(lambda uow: uow.image_sets.exists(store, deleted.image_set_id))
    index.run(lambda uow: uow.image_sets.update(replace(active, state=ImageSetState.DELETED)))
    assert not index.run(lambda uow: uow.image_sets.exists(store, active.image_set_id))
    assert index.run(lambda uow: uow.image_sets.count_in_datastore(store)) == 1


def test_find_primary_picks_the_primary_live_image_set_of_the_series_in_the_datastore(
    index: Index, new_datastore: NewDatastore
) -> None:
    store, other = new_datastore(), new_datastore()
    series = "1.2.826.0.1.3680043.8.498.1"
    deleted_primary = make_image_set(store, series, created_at=T0 - timedelta(days=1))
    deleted_primary = replace(deleted_primary, state=ImageSetState.DELETED)
    target = make_image_set(store, series, state=ImageSetState.LOCKED)
    secondary = make_image_set(store, series, is_primary=False, created_at=T0 - timedelta(days=2))
    other_series = make_image_set(store, series + ".2")
    elsewhere = make_image_set(other, series)
    add_image_sets(index, deleted_primary, secondary, target, other_series, elsewhere)

    def primary(datastore_id: str, series_instance_uid: str) -> ImageSet | None:
        return index.run(lambda uow: uow.image_sets.find_primary(datastore_id, series_instance_uid), readonly=True)

    assert primary(store, series) == target
    assert primary(other, series) == elsewhere
    assert primary(store, series + ".2") == other_series
    assert primary(store, "1.2.3.4.5") is None
    assert primary(new_id(), series) is None

    index.run(lambda uow: uow.image_sets.update(replace(target, state=ImageSetState.DELETED)))
    assert primary(store, series) is None
    promoted = replace(secondary, is_primary=True, version_id=2)
    index.run(lambda uow: uow.image_sets.update(promoted))
    assert primary(store, series) == promoted


def test_image_set_with_latest_version_is_read_together_and_follows_new_versions(
    index: Index, new_datastore: NewDatastore
) -> None:
    store, other = new_datastore(), new_datastore()
    series = "1.2.826.0.1.3680043.8.498.7"
    older = make_image_set(store, series, created_at=T0 - timedelta(hours=1))
    target = replace(make_image_set(store, series, state=ImageSetState.LOCKED), version_id=2)
    older = replace(older, is_primary=False)
    deleted = replace(make_image_set(store, series, created_at=T0 - timedelta(days=1)), state=ImageSetState.DELETED)
    elsewhere = make_image_set(other, series)
    add_image_sets(index, older, target, deleted, elsewhere)
    first, second = make_version(target, 1), replace(make_version(target, 2), message="v2", job_id=new_id())

    def add_versions(*versions: ImageSetVersion) -> None:
        def work(uow: UnitOfWork) -> None:
            for version in versions:
                uow.image_sets.add_version(version)

        index.run(work)

    add_versions(first, second, make_version(older, 1), make_version(deleted, 1), make_version(elsewhere, 1))

    def primary(datastore_id: str, series_uid: str) -> tuple[ImageSet, ImageSetVersion] | None:
        return index.run(lambda uow: uow.image_sets.primary_with_version(datastore_id, series_uid), readonly=True)

    def named(datastore_id: str, image_set_id: str) -> tuple[ImageSet, ImageSetVersion] | None:
        return index.run(lambda uow: uow.image_sets.get_with_version(datastore_id, image_set_id), readonly=True)

    assert primary(store, series) == (target, second)
    assert primary(other, series) == (elsewhere, make_version(elsewhere, 1))
    assert primary(store, series + ".9") is None
    assert primary(new_id(), series) is None
    assert named(store, target.image_set_id) == (target, second)
    assert named(store, older.image_set_id) == (older, make_version(older, 1))  # not primary: still named
    assert named(store, deleted.image_set_id) == (deleted, make_version(deleted, 1))  # the caller judges the state
    assert named(other, target.image_set_id) is None
    assert named(store, new_id()) is None

    # A new version is seen by the very next read (no cache between the index and its readers).
    third = replace(make_version(target, 3), workflow_status=ImageSetWorkflowStatus.UPDATED)
    add_versions(third)
    index.run(lambda uow: uow.image_sets.update(replace(target, version_id=3)))
    assert primary(store, series) == (replace(target, version_id=3), third)
    assert named(store, target.image_set_id) == (replace(target, version_id=3), third)

    # A row pointing at a version that is not there yet reads as nothing (the join is inner).
    index.run(lambda uow: uow.image_sets.update(replace(target, version_id=4)))
    assert primary(store, series) is None
    assert named(store, target.image_set_id) is None


def test_primary_image_sets_of_a_study_come_with_their_latest_versions(
    index: Index, new_datastore: NewDatastore
) -> None:
    store, other = new_datastore(), new_datastore()

    def in_study(
        series: str, created_at: datetime = T0, state: ImageSetState = ImageSetState.ACTIVE, is_primary: bool = True
    ) -> ImageSet:
        image_set = make_image_set(store, series, created_at=created_at, state=state, is_primary=is_primary)
        return replace(image_set, grouping=grouping(series, study_instance_uid="7.7"))

    first = in_study("7.7.1", created_at=T0 - timedelta(hours=2))
    locked = replace(in_study("7.7.2", created_at=T0 - timedelta(hours=1), state=ImageSetState.LOCKED), version_id=2)
    secondary = in_study("7.7.3", is_primary=False)
    deleted = in_study("7.7.4", state=ImageSetState.DELETED)
    elsewhere = replace(in_study("7.7.1"), datastore_id=other)
    add_image_sets(index, first, locked, secondary, deleted, elsewhere)
    versions = [
        make_version(first, 1),
        make_version(locked, 1),
        make_version(locked, 2),
        make_version(secondary, 1),
        make_version(deleted, 1),
        make_version(elsewhere, 1),
    ]

    def work(uow: UnitOfWork) -> None:
        for version in versions:
            uow.image_sets.add_version(version)

    index.run(work)

    def study(datastore_id: str, study_uid: str) -> list[tuple[ImageSet, ImageSetVersion]]:
        return index.run(
            lambda uow: uow.image_sets.primary_in_study_with_versions(datastore_id, study_uid), readonly=True
        )

    assert study(store, "7.7") == [(first, versions[0]), (locked, versions[2])]
    assert study(other, "7.7") == [(elsewhere, versions[5])]
    assert study(store, "0.0") == []


# -- versions ------------------------------------------------------------------------------------------


def test_versions_add_get_and_list_newest_first_with_keyset(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    image_set, neighbour = make_image_set(store), make_image_set(store)
    add_image_sets(index, image_set, neighbour)
    versions = [make_version(image_set, n) for n in (3, 1, 5, 2, 4)]
    versions[0] = replace(
        versions[0],
        state=ImageSetState.LOCKED,
        workflow_status=ImageSetWorkflowStatus.COPYING,
        is_primary=False,
        created_at=datetime(2024, 6, 1, 1, 2, 3, 4, tzinfo=PLUS_TWO),
        message="copy from elsewhere",
        job_id=new_id(),
    )
    other = make_version(neighbour, 1)

    def work(uow: UnitOfWork) -> None:
        for version in [*versions, other]:
            uow.image_sets.add_version(version)

    index.run(work)

    def listed(before: int | None, limit: int) -> list[ImageSetVersion]:
        return index.run(
            lambda uow: uow.image_sets.list_versions(store, image_set.image_set_id, before, limit),
            readonly=True,
        )

    newest_first = sorted(versions, key=lambda v: v.version_id, reverse=True)
    assert listed(None, 10) == newest_first
    assert [v.version_id for v in listed(3, 10)] == [2, 1]
    assert listed(None, 0) == []
    assert listed(1, 10) == []
    pages: list[ImageSetVersion] = []
    before: int | None = None
    while page := listed(before, 2):
        pages.extend(page)
        before = page[-1].version_id
    assert pages == newest_first

    got = index.run(lambda uow: uow.image_sets.get_version(store, image_set.image_set_id, 3))
    assert got == versions[0]
    assert got is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert index.run(lambda uow: uow.image_sets.get_version(store, image_set.image_set_id, 9)) is None
    assert index.run(lambda uow: uow.image_sets.get_version(store, neighbour.image_set_id, 1)) == other
    assert index.run(lambda uow: uow.image_sets.list_versions(store, neighbour.image_set_id, None, 9)) == [other]


def test_duplicate_version_conflicts_and_leaves_the_unit_of_work_usable(
    index: Index, new_datastore: NewDatastore
) -> None:
    store = new_datastore()
    image_set = make_image_set(store)
    add_image_sets(index, image_set)
    first = make_version(image_set, 1)
    index.run(lambda uow: uow.image_sets.add_version(first))

    with pytest.raises(ConflictError):
        index.run(lambda uow: uow.image_sets.add_version(replace(first, metadata_key="other")))
    with pytest.raises(ConflictError):  # no such image set
        index.run(lambda uow: uow.image_sets.add_version(make_version(make_image_set(store), 1)))

    second = make_version(image_set, 2)

    def retry_with_next_number(uow: UnitOfWork) -> bool:
        try:
            uow.image_sets.add_version(replace(first, message="dup"))
        except ConflictError:
            uow.image_sets.add_version(second)
            return True
        return False

    assert index.run(retry_with_next_number) is True
    assert index.run(lambda uow: uow.image_sets.list_versions(store, image_set.image_set_id, None, 10)) == [
        second,
        first,
    ]


# -- frames ----------------------------------------------------------------------------------------------


def test_frames_are_added_idempotently_and_isolated_by_image_set(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    one, two = new_id(), new_id()
    frame = new_id()
    big = FrameRef(store, one, frame, "1.2.840.10008.1.2.4.202", 5 * 2**32 + 7)
    small = FrameRef(store, one, new_id(), "1.2.840.10008.1.2.1", 0)
    same_id_in_two = FrameRef(store, two, frame, "1.2.840.10008.1.2.4.90", 12)
    same_id_elsewhere = FrameRef(other, one, frame, "1.2.840.10008.1.2.4.90", 13)
    index.run(lambda uow: uow.image_sets.add_frames([big, small, same_id_in_two, same_id_elsewhere]))
    third = FrameRef(store, one, new_id(), "1.2.840.10008.1.2.1", 99)
    index.run(lambda uow: uow.image_sets.add_frames([replace(big, size=1), third, replace(big, size=2)]))
    index.run(lambda uow: uow.image_sets.add_frames([]))

    def frame_of(datastore_id: str, image_set_id: str, frame_id: str) -> FrameRef | None:
        return index.run(lambda uow: uow.image_sets.get_frame(datastore_id, image_set_id, frame_id), readonly=True)

    assert frame_of(store, one, frame) == big  # the first write stays
    assert frame_of(store, one, small.frame_id) == small
    assert frame_of(store, one, third.frame_id) == third
    assert frame_of(store, two, frame) == same_id_in_two
    assert frame_of(other, one, frame) == same_id_elsewhere
    assert frame_of(store, two, small.frame_id) is None
    assert frame_of(store, new_id(), frame) is None
    with pytest.raises(ConflictError):  # frames belong to a data store in the index
        index.run(lambda uow: uow.image_sets.add_frames([FrameRef(new_id(), one, frame, "1.2", 1)]))
    assert frame_of(store, one, frame) == big


def test_failed_unit_of_work_leaves_no_image_set_version_or_frame(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    kept = make_image_set(store)
    add_image_sets(index, kept)
    doomed = make_image_set(store, "4.5.6")
    frame = FrameRef(store, doomed.image_set_id, new_id(), "1.2.840.10008.1.2.1", 10)

    def work(uow: UnitOfWork) -> None:
        uow.image_sets.add(doomed)
        uow.image_sets.add_version(make_version(doomed, 1))
        uow.image_sets.add_frames([frame])
        uow.image_sets.update(replace(kept, state=ImageSetState.LOCKED))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        index.run(work)

    assert get(index, doomed) is None
    assert get(index, kept) == kept
    assert index.run(lambda uow: uow.image_sets.get_version(store, doomed.image_set_id, 1)) is None
    assert index.run(lambda uow: uow.image_sets.get_frame(store, doomed.image_set_id, frame.frame_id)) is None
    assert index.run(lambda uow: uow.image_sets.find_primary(store, "4.5.6")) is None
