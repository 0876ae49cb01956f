"""The ``DatastoreKeyRepository`` contract on every index adapter (memory, SQLite, PostgreSQL): wrapped data store
keys of encryption at rest (migration 0009)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openhi.crypto.model import StoredDataKey, WrappingKind
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.index.port import Index

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def stored(datastore_id: str, version: int = 1, wrapping_key_id: str = "mk-one", **extra: object) -> StoredDataKey:
    kind = extra.pop("kind", WrappingKind.MASTER)
    assert isinstance(kind, WrappingKind)
    return StoredDataKey(
        datastore_id=datastore_id,
        version=version,
        wrapped=bytes([version]) * 60,
        kind=kind,
        wrapping_key_id=wrapping_key_id,
        created_at=T0 + timedelta(seconds=version),
        legacy_plaintext=bool(extra.pop("legacy_plaintext", False)),
    )


def test_add_get_current_and_versions(index: Index, new_datastore: Callable[[], str]) -> None:
    ds = new_datastore()
    assert index.run(lambda uow: uow.datastore_keys.current(ds)) is None
    assert index.run(lambda uow: uow.datastore_keys.add(stored(ds, 1, legacy_plaintext=True)))
    assert index.run(lambda uow: uow.datastore_keys.add(stored(ds, 2, ARN, kind=WrappingKind.CUSTOMER)))
    assert index.run(lambda uow: uow.datastore_keys.get(ds, 1)) == stored(ds, 1, legacy_plaintext=True)
    assert index.run(lambda uow: uow.datastore_keys.current(ds)) == stored(ds, 2, ARN, kind=WrappingKind.CUSTOMER)
    assert [k.version for k in index.run(lambda uow: uow.datastore_keys.list_of(ds))] == [1, 2]
    assert index.run(lambda uow: uow.datastore_keys.get(ds, 3)) is None


def test_adding_an_existing_version_changes_nothing(index: Index, new_datastore: Callable[[], str]) -> None:
    ds = new_datastore()
    first = stored(ds, 1, "mk-first")
    assert index.run(lambda uow: uow.datastore_keys.add(first)) is True
    assert index.run(lambda uow: uow.datastore_keys.add(stored(ds, 1, "mk-second"))) is False
    assert index.run(lambda uow: uow.datastore_keys.get(ds, 1)) == first


def test_a_key_needs_its_datastore(index: Index) -> None:
    with pytest.raises(ConflictError):
        index.run(lambda uow: uow.datastore_keys.add(stored(new_id())))


def test_times_read_back_in_utc(index: Index, new_datastore: Callable[[], str]) -> None:
    ds = new_datastore()
    key = stored(ds)
    elsewhere = StoredDataKey(
        ds, 1, key.wrapped, key.kind, key.wrapping_key_id, T0.astimezone(timezone(timedelta(hours=5)))
    )
    index.run(lambda uow: uow.datastore_keys.add(elsewhere))
    read = index.run(lambda uow: uow.datastore_keys.get(ds, 1))
    assert read is not None
    assert read.created_at == T0
    assert read.created_at.tzinfo == UTC


def test_list_wrapped_and_rewrap(index: Index, new_datastore: Callable[[], str]) -> None:
    a, b = sorted(new_datastore() for _ in range(2))
    index.run(lambda uow: uow.datastore_keys.add(stored(a, 1, "mk-old")))
    index.run(lambda uow: uow.datastore_keys.add(stored(a, 2, "mk-new")))
    index.run(lambda uow: uow.datastore_keys.add(stored(b, 1, "mk-old")))
    index.run(lambda uow: uow.datastore_keys.add(stored(b, 2, ARN, kind=WrappingKind.CUSTOMER)))

    old = index.run(lambda uow: uow.datastore_keys.list_wrapped(WrappingKind.MASTER, "mk-new", 10))
    assert [(k.datastore_id, k.version) for k in old] == [(a, 1), (b, 1)]
    assert len(index.run(lambda uow: uow.datastore_keys.list_wrapped(WrappingKind.MASTER, "mk-new", 1))) == 1
    customer = index.run(lambda uow: uow.datastore_keys.list_wrapped(WrappingKind.CUSTOMER, "", 10))
    assert [(k.datastore_id, k.version) for k in customer] == [(b, 2)]

    renewed = old[0].rewrapped(b"\xff" * 60, "mk-new")
    assert index.run(lambda uow: uow.datastore_keys.rewrap(renewed, "mk-old")) is True
    assert index.run(lambda uow: uow.datastore_keys.rewrap(renewed, "mk-old")) is False  # compare-and-set
    assert index.run(lambda uow: uow.datastore_keys.get(a, 1)) == renewed
    left = index.run(lambda uow: uow.datastore_keys.list_wrapped(WrappingKind.MASTER, "mk-new", 10))
    assert [(k.datastore_id, k.version) for k in left] == [(b, 1)]


def test_remove_all_of_datastore(index: Index, new_datastore: Callable[[], str]) -> None:
    gone, kept = new_datastore(), new_datastore()
    for version in (1, 2):
        index.run(lambda uow, v=version: uow.datastore_keys.add(stored(gone, v)))  # type: ignore[misc]
    index.run(lambda uow: uow.datastore_keys.add(stored(kept)))
    assert index.run(lambda uow: uow.datastore_keys.remove_all_of_datastore(gone)) == 2
    assert index.run(lambda uow: uow.datastore_keys.list_of(gone)) == []
    assert index.run(lambda uow: uow.datastore_keys.current(kept)) == stored(kept)
    assert index.run(lambda uow: uow.datastore_keys.remove_all_of_datastore(gone)) == 0


def test_a_failed_unit_of_work_leaves_no_key(index: Index, new_datastore: Callable[[], str]) -> None:
    ds = new_datastore()

    def work(uow: object) -> None:
        uow.datastore_keys.add(stored(ds))  # type: ignore[attr-defined]
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        index.run(work)
    assert index.run(lambda uow: uow.datastore_keys.current(ds)) is None
