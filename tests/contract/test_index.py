"""One contract suite for every adapter of the index port: memory, SQLite (file) and PostgreSQL.

The ``backend`` / ``index`` fixtures are in ``conftest.py``; image sets and import jobs have their own suites.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from tests.contract.conftest import Backend

from openhi.datastores.model import QUOTA_STATUSES, Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.index.port import DatastorePageKey, Index, UnitOfWork

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)


def make_datastore(
    created_at: datetime = T0,
    status: DatastoreStatus = DatastoreStatus.ACTIVE,
    token: str | None = None,
    **extra: str,
) -> Datastore:
    return Datastore(
        datastore_id=new_id(),
        name=extra.get("name", "store"),
        status=status,
        lossless_storage_format=LosslessStorageFormat.HTJ2K,
        created_at=created_at,
        updated_at=created_at,
        client_token=token or new_id(),
        kms_key_arn=extra.get("kms_key_arn"),
        lambda_authorizer_arn=extra.get("lambda_authorizer_arn"),
    )


def add(index: Index, *datastores: Datastore) -> None:
    def work(uow: UnitOfWork) -> None:
        for datastore in datastores:
            uow.datastores.add(datastore)

    index.run(work)


def get(index: Index, datastore_id: str) -> Datastore | None:
    return index.run(lambda uow: uow.datastores.get(datastore_id), readonly=True)


# -- data stores ------------------------------------------------------------------------------------------


def test_datastore_round_trip_keeps_every_field(index: Index) -> None:
    plus_two = timezone(timedelta(hours=2))
    full = Datastore(
        datastore_id=new_id(),
        name="Radiology ünïcode",
        status=DatastoreStatus.CREATING,
        lossless_storage_format=LosslessStorageFormat.JPEG_2000_LOSSLESS,
        created_at=datetime(2024, 5, 1, 14, 30, 0, 1, tzinfo=plus_two),
        updated_at=datetime(2024, 5, 2, 9, 0, 59, 999999, tzinfo=UTC),
        client_token="token-1",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abc",
        lambda_authorizer_arn="arn:aws:lambda:us-east-1:123456789012:function:auth",
    )
    bare = make_datastore()
    add(index, full, bare)

    got = get(index, full.datastore_id)
    assert got == full
    assert got is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2024, 5, 1, 12, 30, 0, 1, tzinfo=UTC)
    assert got.created_at.microsecond == 1
    assert got.updated_at.microsecond == 999999
    assert get(index, bare.datastore_id) == bare
    assert get(index, new_id()) is None


def test_get_by_client_token(index: Index) -> None:
    first, second = make_datastore(token="alpha"), make_datastore(token="beta")
    add(index, first, second)
    assert index.run(lambda uow: uow.datastores.get_by_client_token("beta")) == second
    assert index.run(lambda uow: uow.datastores.get_by_client_token("gamma")) is None


def test_duplicate_client_token_conflicts_and_changes_nothing(index: Index) -> None:
    original = make_datastore(token="same")
    add(index, original)
    newcomer, duplicate = make_datastore(), make_datastore(token="same")

    with pytest.raises(ConflictError):
        add(index, newcomer, duplicate)

    assert get(index, newcomer.datastore_id) is None
    assert get(index, duplicate.datastore_id) is None
    assert get(index, original.datastore_id) == original
    assert index.run(lambda uow: uow.datastores.count_in(list(DatastoreStatus))) == 1


def test_conflict_caught_inside_the_unit_of_work_leaves_it_usable(index: Index) -> None:
    original = make_datastore(token="same")
    add(index, original)
    later = make_datastore()

    def work(uow: UnitOfWork) -> bool:
        try:
            uow.datastores.add(make_datastore(token="same"))
        except ConflictError:
            uow.datastores.add(later)
            return True
        return False

    assert index.run(work) is True
    assert get(index, later.datastore_id) == later


def test_list_is_newest_first_with_keyset_pages_and_status_filter(index: Index) -> None:
    tie = T0 + timedelta(seconds=10)
    stores = [
        make_datastore(T0),
        make_datastore(T0 + timedelta(microseconds=1), DatastoreStatus.DELETED),
        make_datastore(tie),
        make_datastore(tie, DatastoreStatus.CREATING),
        make_datastore(T0 + timedelta(days=1)),
    ]
    add(index, *stores)
    expected = sorted(stores, key=lambda d: (d.created_at, d.datastore_id), reverse=True)

    def page(status: DatastoreStatus | None, after: DatastorePageKey | None, limit: int) -> list[Datastore]:
        return index.run(lambda uow: uow.datastores.list_page(status, after, limit), readonly=True)

    assert page(None, None, 10) == expected
    collected: list[Datastore] = []
    after: DatastorePageKey | None = None
    while True:
        rows = page(None, after, 2)
        collected.extend(rows)
        if len(rows) < 2:
            break
        after = DatastorePageKey(rows[-1].created_at, rows[-1].datastore_id)
    assert collected == expected

    active = [d for d in expected if d.status is DatastoreStatus.ACTIVE]
    assert page(DatastoreStatus.ACTIVE, None, 10) == active
    first = page(DatastoreStatus.ACTIVE, None, 1)
    assert first == active[:1]
    key = DatastorePageKey(first[0].created_at, first[0].datastore_id)
    assert page(DatastoreStatus.ACTIVE, key, 10) == active[1:]
    assert page(DatastoreStatus.DELETING, None, 10) == []


def test_count_in_and_ids_in(index: Index) -> None:
    creating, active, deleting, deleted = (
        make_datastore(status=s)
        for s in (
            DatastoreStatus.CREATING,
            DatastoreStatus.ACTIVE,
            DatastoreStatus.DELETING,
            DatastoreStatus.DELETED,
        )
    )
    other_deleting = make_datastore(status=DatastoreStatus.DELETING)
    add(index, creating, active, deleting, deleted, other_deleting)

    assert index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES)) == 4
    assert index.run(lambda uow: uow.datastores.count_in([DatastoreStatus.DELETED])) == 1
    assert index.run(lambda uow: uow.datastores.count_in([])) == 0
    ids = index.run(lambda uow: uow.datastores.ids_in(DatastoreStatus.DELETING))
    assert sorted(ids) == sorted([deleting.datastore_id, other_deleting.datastore_id])
    assert index.run(lambda uow: uow.datastores.ids_in(DatastoreStatus.CREATE_FAILED)) == []


def test_transition_is_compare_and_set(index: Index) -> None:
    store = make_datastore(status=DatastoreStatus.CREATING)
    add(index, store)
    later = T0 + timedelta(minutes=1, microseconds=7)

    def move() -> bool:
        return index.run(
            lambda uow: uow.datastores.transition(
                store.datastore_id, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, later
            )
        )

    assert move() is True
    assert move() is False
    assert get(index, store.datastore_id) == store.with_status(DatastoreStatus.ACTIVE, later)
    unknown = index.run(
        lambda uow: uow.datastores.transition(new_id(), DatastoreStatus.ACTIVE, DatastoreStatus.DELETING, later)
    )
    assert unknown is False


def test_failed_unit_of_work_rolls_back_everything(index: Index) -> None:
    kept = make_datastore(status=DatastoreStatus.CREATING)
    add(index, kept)
    index.run(lambda uow: uow.tags.put(kept.datastore_id, None, {"team": "a"}))
    doomed = make_datastore()

    def work(uow: UnitOfWork) -> None:
        uow.datastores.add(doomed)
        uow.tags.put(kept.datastore_id, None, {"team": "b", "extra": "x"})
        uow.tags.put(doomed.datastore_id, None, {"k": "v"})
        assert uow.datastores.transition(kept.datastore_id, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, T0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        index.run(work)

    assert get(index, doomed.datastore_id) is None
    assert get(index, kept.datastore_id) == kept
    assert index.run(lambda uow: uow.tags.get(kept.datastore_id, None)) == {"team": "a"}
    assert index.run(lambda uow: uow.tags.get(doomed.datastore_id, None)) == {}


def test_run_returns_the_result_of_readonly_work(index: Index) -> None:
    assert index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES), readonly=True) == 0
    index.check()


# -- tags ---------------------------------------------------------------------------------------------


def test_tags_put_overwrite_remove_and_isolation(index: Index) -> None:
    one, two = make_datastore(), make_datastore()
    add(index, one, two)
    image_set = new_id()

    def tags_of(datastore: Datastore, image_set_id: str | None) -> dict[str, str]:
        return index.run(lambda uow: uow.tags.get(datastore.datastore_id, image_set_id), readonly=True)

    assert tags_of(one, None) == {}
    index.run(lambda uow: uow.tags.put(one.datastore_id, None, {"a": "1", "b": "2"}))
    index.run(lambda uow: uow.tags.put(one.datastore_id, image_set, {"a": "image"}))
    index.run(lambda uow: uow.tags.put(two.datastore_id, None, {"a": "other"}))
    index.run(lambda uow: uow.tags.put(one.datastore_id, None, {"b": "20", "c": ""}))
    index.run(lambda uow: uow.tags.put(one.datastore_id, None, {}))

    assert tags_of(one, None) == {"a": "1", "b": "20", "c": ""}
    assert tags_of(one, image_set) == {"a": "image"}
    assert tags_of(two, None) == {"a": "other"}
    assert tags_of(two, image_set) == {}

    index.run(lambda uow: uow.tags.remove(one.datastore_id, None, ["a", "absent"]))
    index.run(lambda uow: uow.tags.remove(one.datastore_id, None, []))
    assert tags_of(one, None) == {"b": "20", "c": ""}
    assert tags_of(one, image_set) == {"a": "image"}
    assert tags_of(two, None) == {"a": "other"}

    index.run(lambda uow: uow.tags.remove(one.datastore_id, image_set, ["a"]))
    assert tags_of(one, image_set) == {}
    assert tags_of(one, None) == {"b": "20", "c": ""}


def test_remove_all_tags_of_a_datastore(index: Index) -> None:
    one, two = make_datastore(), make_datastore()
    add(index, one, two)
    image_set = new_id()

    def work(uow: UnitOfWork) -> None:
        uow.tags.put(one.datastore_id, None, {"a": "1"})
        uow.tags.put(one.datastore_id, image_set, {"b": "2"})
        uow.tags.put(two.datastore_id, None, {"a": "3"})
        uow.tags.put(two.datastore_id, image_set, {"b": "4"})

    index.run(work)
    index.run(lambda uow: uow.tags.remove_all_of_datastore(one.datastore_id))

    assert index.run(lambda uow: uow.tags.get(one.datastore_id, None)) == {}
    assert index.run(lambda uow: uow.tags.get(one.datastore_id, image_set)) == {}
    assert index.run(lambda uow: uow.tags.get(two.datastore_id, None)) == {"a": "3"}
    assert index.run(lambda uow: uow.tags.get(two.datastore_id, image_set)) == {"b": "4"}


def test_tags_need_a_datastore_in_the_index(index: Index) -> None:
    with pytest.raises(ConflictError):
        index.run(lambda uow: uow.tags.put(new_id(), None, {"a": "1"}))


# -- image sets -----------------------------------------------------------------------------------------


def test_image_sets_exist_and_count_unless_deleted(backend: Backend) -> None:
    index = backend.index
    one, two = make_datastore(), make_datastore()
    add(index, one, two)
    active, locked, deleted, elsewhere = new_id(), new_id(), new_id(), new_id()
    backend.insert_image_set(one.datastore_id, active, "ACTIVE")
    backend.insert_image_set(one.datastore_id, locked, "LOCKED")
    backend.insert_image_set(one.datastore_id, deleted, "DELETED")
    backend.insert_image_set(two.datastore_id, elsewhere, "ACTIVE")

    def exists(datastore: Datastore, image_set_id: str) -> bool:
        return index.run(lambda uow: uow.image_sets.exists(datastore.datastore_id, image_set_id))

    assert exists(one, active)
    assert exists(one, locked)
    assert not exists(one, deleted)
    assert not exists(one, elsewhere)
    assert exists(two, elsewhere)
    assert not exists(two, new_id())
    assert index.run(lambda uow: uow.image_sets.count_in_datastore(one.datastore_id)) == 2
    assert index.run(lambda uow: uow.image_sets.count_in_datastore(two.datastore_id)) == 1
    assert index.run(lambda uow: uow.image_sets.count_in_datastore(new_id())) == 0
