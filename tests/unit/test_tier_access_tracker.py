"""AccessTracker: accesses coalesced in memory, one index write per image set per flush, archived ones restored."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from openhi.errors import UnavailableError
from openhi.imagesets.model import StorageTier
from openhi.index.memory import MemoryImageSet, MemoryIndex
from openhi.index.port import UnitOfWork
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessTracker

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DS = "d" * 32
A, B, C = "a" * 32, "b" * 32, "c" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class CountingIndex(MemoryIndex):
    """Counts units of work; ``fail`` makes the next one raise (a database that went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0
        self.fail = False

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        self.runs += 1
        if self.fail:
            self.fail = False
            raise UnavailableError("index down")
        return super().run(work, readonly=readonly)


def setup(*image_set_ids: str) -> tuple[CountingIndex, Clock]:
    index = CountingIndex()
    for image_set_id in image_set_ids:
        index.state.image_sets[(DS, image_set_id)] = MemoryImageSet(created_at=T0, updated_at=T0)
    return index, Clock()


def last_access(index: MemoryIndex, image_set_id: str) -> datetime | None:
    return index.state.image_sets[(DS, image_set_id)].last_accessed_at


def test_many_reads_are_one_write_per_image_set_with_the_latest_time() -> None:
    index, clock = setup(A, B)
    tracker = AccessTracker(index, clock)
    for second in range(1000):
        clock.now = T0 + timedelta(seconds=second)
        tracker.accessed(DS, A if second % 2 else B)
    assert index.runs == 0  # reads never touch the index
    assert tracker.pending == 2
    assert tracker.flush() == []
    assert index.runs == 1
    assert last_access(index, A) == T0 + timedelta(seconds=999)
    assert last_access(index, B) == T0 + timedelta(seconds=998)
    assert tracker.flush() == []
    assert index.runs == 1


def test_a_failed_flush_keeps_the_accesses_for_the_next_one() -> None:
    index, clock = setup(A)
    tracker = AccessTracker(index, clock)
    tracker.accessed(DS, A)
    index.fail = True
    with pytest.raises(UnavailableError):
        tracker.flush()
    clock.now = T0 + timedelta(minutes=1)
    tracker.accessed(DS, B)
    assert tracker.pending == 2
    tracker.flush()
    assert last_access(index, A) == T0


def test_archived_image_sets_are_restored_after_the_flush() -> None:
    index, clock = setup(A, B, C)
    for image_set_id in (A, C):
        index.state.image_sets[(DS, image_set_id)].storage_tier = StorageTier.ARCHIVE_INSTANT_ACCESS
    restored: list[tuple[str, str]] = []

    def restore(datastore_id: str, image_set_id: str) -> bool:
        restored.append((datastore_id, image_set_id))
        return True

    tracker = AccessTracker(index, clock, restore)
    for image_set_id in (A, B, C):
        tracker.accessed(DS, image_set_id)
    assert sorted(tracker.flush()) == [(DS, A), (DS, C)]
    assert sorted(restored) == [(DS, A), (DS, C)]
    tracker.accessed(DS, A)
    tracker.close()  # at shutdown: recorded, not restored
    assert len(restored) == 2


def test_one_failing_restore_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    index, clock = setup(A, B)
    for image_set_id in (A, B):
        index.state.image_sets[(DS, image_set_id)].storage_tier = StorageTier.ARCHIVE_INSTANT_ACCESS
    done: list[str] = []

    def restore(datastore_id: str, image_set_id: str) -> bool:
        if image_set_id == A:
            raise RuntimeError("corrupt")
        done.append(image_set_id)
        return True

    tracker = AccessTracker(index, clock, restore)
    tracker.accessed(DS, A)
    tracker.accessed(DS, B)
    with caplog.at_level(logging.ERROR):
        tracker.flush()
    assert done == [B]
    assert "the tier sweep retries" in caplog.text


def test_services_without_tiers_record_nothing() -> None:
    index, _ = setup(A)
    NO_ACCESS_RECORDING.accessed(DS, A)
    assert index.state.image_sets[(DS, A)].last_accessed_at is None
