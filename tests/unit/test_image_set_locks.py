"""Locks: version and state compare-and-set, the per-data-store quota, background failures unlock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from openhi.dicom.normalize import GroupingKey
from openhi.errors import ConflictError, QuotaExceededError
from openhi.imagesets.locks import Locks, wire_message
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.index.memory import MemoryImageSet, MemoryIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DS = "d" * 32
KEY = GroupingKey(None, None, None, None, None, None, None)


def image_set(index: MemoryIndex, image_set_id: str) -> ImageSet:
    index.state.image_sets[(DS, image_set_id)] = MemoryImageSet(created_at=T0, updated_at=T0)
    found = index.run(lambda uow: uow.image_sets.get(DS, image_set_id))
    assert found is not None
    return found


def test_lock_checks_version_state_and_quota() -> None:
    index = MemoryIndex()
    locks = Locks(index, lambda: T0, ThreadPoolExecutor(1), max_concurrent=1)
    first, second = image_set(index, "a" * 32), image_set(index, "b" * 32)
    with pytest.raises(ConflictError, match="not the latest version"):
        index.run(lambda uow: locks.lock(uow, first, 9, ImageSetWorkflowStatus.UPDATING))
    locked = index.run(lambda uow: locks.lock(uow, first, 1, ImageSetWorkflowStatus.UPDATING))
    assert (locked.state, locked.workflow_status) == (ImageSetState.LOCKED, ImageSetWorkflowStatus.UPDATING)
    with pytest.raises(ConflictError, match="locked"):
        index.run(lambda uow: locks.lock(uow, locked, None, ImageSetWorkflowStatus.DELETING))
    with pytest.raises(QuotaExceededError):  # one UpdateImageSetMetadata of the data store is already in flight
        index.run(lambda uow: locks.lock(uow, second, None, ImageSetWorkflowStatus.UPDATING))


def test_a_failing_background_step_unlocks_with_a_message() -> None:
    index = MemoryIndex()
    locks = Locks(index, lambda: T0, ThreadPoolExecutor(1))
    target = image_set(index, "a" * 32)
    locked = index.run(lambda uow: locks.lock(uow, target, 1, ImageSetWorkflowStatus.UPDATING))

    def work() -> None:
        raise RuntimeError("disk full [errno 28]")

    def fail(message: str) -> None:
        index.run(lambda uow: locks.unlock(uow, locked, ImageSetWorkflowStatus.UPDATE_FAILED, message))

    locks.finish_later([locked], work, fail).result()
    after = index.run(lambda uow: uow.image_sets.get(DS, "a" * 32))
    assert after is not None
    assert (after.state, after.workflow_status) == (ImageSetState.ACTIVE, ImageSetWorkflowStatus.UPDATE_FAILED)
    assert after.message == wire_message("RuntimeError: disk full [errno 28]")
    assert not locks.in_flight(locked)


def test_wire_messages_fit_the_model_pattern() -> None:
    assert wire_message("bad [value] {x}") == "bad  value   x "
    assert len(wire_message("x" * 5000)) == 2048
