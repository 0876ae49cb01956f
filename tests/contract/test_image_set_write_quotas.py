"""Per-operation concurrency quotas of image set writes, on every index adapter (guide 22741-22765).

100 concurrent CopyImageSet, 100 DeleteImageSet and 100 UpdateImageSetMetadata requests per data store, each its
own quota: a request in flight is an image set locked with its operation's workflow status (a copy counts its
source, COPYING_WITH_READ_ONLY_ACCESS, once; the destination's COPYING lock is not counted again).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from tests.contract.conftest import Backend

from openhi.errors import QuotaExceededError
from openhi.ids import new_id
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetWorkflowStatus
from openhi.index.port import Index

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UPDATING = ImageSetWorkflowStatus.UPDATING
DELETING = ImageSetWorkflowStatus.DELETING
COPY_SOURCE = ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS
COPY_DESTINATION = ImageSetWorkflowStatus.COPYING


def _image_set(backend: Backend, datastore_id: str) -> ImageSet:
    image_set_id = new_id()
    backend.insert_image_set(datastore_id, image_set_id, "ACTIVE")
    found = backend.index.run(lambda uow: uow.image_sets.get(datastore_id, image_set_id))
    assert found is not None
    return found


def _lock(index: Index, locks: Locks, image_set: ImageSet, workflow: ImageSetWorkflowStatus) -> ImageSet:
    return index.run(lambda uow: locks.lock(uow, image_set, None, workflow))


def test_each_operation_has_its_own_quota(backend: Backend, new_datastore: Callable[[], str]) -> None:
    datastore = new_datastore()
    locks = Locks(backend.index, lambda: T0, ThreadPoolExecutor(1), {UPDATING: 1, COPY_SOURCE: 1, DELETING: 2})
    sets = [_image_set(backend, datastore) for _ in range(7)]
    _lock(backend.index, locks, sets[0], UPDATING)
    with pytest.raises(QuotaExceededError, match="1 UpdateImageSetMetadata requests in progress"):
        _lock(backend.index, locks, sets[1], UPDATING)
    _lock(backend.index, locks, sets[1], COPY_SOURCE)  # copies are counted apart from updates
    _lock(backend.index, locks, sets[2], COPY_DESTINATION)  # the destination of that copy: not counted again
    with pytest.raises(QuotaExceededError, match="1 CopyImageSet requests in progress"):
        _lock(backend.index, locks, sets[3], COPY_SOURCE)
    _lock(backend.index, locks, sets[3], DELETING)
    _lock(backend.index, locks, sets[4], DELETING)
    with pytest.raises(QuotaExceededError, match="2 DeleteImageSet requests in progress"):
        _lock(backend.index, locks, sets[5], DELETING)
    counts = backend.index.run(
        lambda uow: (
            [uow.image_sets.count_locked(datastore, w) for w in (UPDATING, COPY_SOURCE, DELETING)]
            + [uow.image_sets.count_locked(datastore)]
        )
    )
    assert counts == [1, 1, 2, 5]


def test_quotas_are_per_data_store(backend: Backend, new_datastore: Callable[[], str]) -> None:
    one, two = new_datastore(), new_datastore()
    locks = Locks(backend.index, lambda: T0, ThreadPoolExecutor(1), 1)  # one int: the same quota for each
    _lock(backend.index, locks, _image_set(backend, one), UPDATING)
    _lock(backend.index, locks, _image_set(backend, two), UPDATING)
    with pytest.raises(QuotaExceededError):
        _lock(backend.index, locks, _image_set(backend, one), UPDATING)
    locked = backend.index.run(lambda uow: uow.image_sets.count_locked(two, UPDATING))
    assert locked == 1


def test_a_zero_quota_refuses_every_request_of_that_operation(
    backend: Backend, new_datastore: Callable[[], str]
) -> None:
    datastore = new_datastore()
    locks = Locks(backend.index, lambda: T0, ThreadPoolExecutor(1), {UPDATING: 0, COPY_SOURCE: 5, DELETING: 5})
    with pytest.raises(QuotaExceededError):
        _lock(backend.index, locks, _image_set(backend, datastore), UPDATING)
    _lock(backend.index, locks, _image_set(backend, datastore), DELETING)
