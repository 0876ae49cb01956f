"""The ``EventRepository`` contract on every index adapter (memory, SQLite, PostgreSQL): the event outbox of
migration 0007 -- appended in the unit of work, published in commit order without gaps, cursors with leases."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openhi.errors import ConflictError, UnavailableError
from openhi.events.model import ChangeEvent, PublishedEvent
from openhi.index.port import Index, UnitOfWork
from openhi.index.sql.adapter import SqlIndex

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
DS = "0123456789abcdef0123456789abcdef"


def event(n: int, *, at: datetime = T0, image_set: str | None = None, source: str | None = None) -> ChangeEvent:
    return ChangeEvent(
        event_id=str(uuid.uuid4()),
        detail_type="Image Set Updated" if image_set else "Data Store Created",
        time=at,
        datastore_id=DS,
        image_set_id=image_set,
        source_image_set_id=source,
        detail={"n": str(n), "isPrimary": n % 2 == 0, "datastoreId": DS},
    )


def append(index: Index, *events: ChangeEvent) -> None:
    def work(uow: UnitOfWork) -> None:
        for item in events:
            uow.events.append(item)

    index.run(work)


def publish(index: Index, limit: int = 1000) -> int:
    return index.run(lambda uow: uow.events.publish(limit))


def after(index: Index, sequence: int, limit: int = 1000) -> list[PublishedEvent]:
    return index.run(lambda uow: uow.events.published_after(sequence, limit), readonly=True)


def test_appended_events_are_invisible_until_published_then_numbered_in_append_order(index: Index) -> None:
    events = [event(n) for n in range(5)]
    append(index, *events[:2])
    append(index, *events[2:])
    assert index.run(lambda uow: uow.events.has_unpublished(), readonly=True)
    assert after(index, 0) == []
    assert index.run(lambda uow: uow.events.last_sequence(), readonly=True) == 0
    assert publish(index, limit=3) == 3
    assert publish(index) == 2
    assert publish(index) == 0
    assert not index.run(lambda uow: uow.events.has_unpublished(), readonly=True)
    assert after(index, 0) == [PublishedEvent(n + 1, e) for n, e in enumerate(events)]
    assert index.run(lambda uow: uow.events.last_sequence(), readonly=True) == 5


def test_events_round_trip_every_field_in_utc(index: Index) -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    stored = event(7, at=plus_two, image_set="a" * 32, source="b" * 32)
    append(index, stored)
    publish(index)
    [published] = after(index, 0)
    assert published.event == stored
    assert published.event.time.tzinfo == UTC
    assert list(published.event.detail) == ["n", "isPrimary", "datastoreId"]  # order kept
    assert published.event.detail["isPrimary"] is False


def test_paging_after_a_sequence(index: Index) -> None:
    append(index, *[event(n) for n in range(7)])
    publish(index)
    assert [p.sequence for p in after(index, 0, limit=3)] == [1, 2, 3]
    assert [p.sequence for p in after(index, 3, limit=3)] == [4, 5, 6]
    assert [p.sequence for p in after(index, 6, limit=3)] == [7]
    assert after(index, 7) == []


def test_an_event_rolls_back_with_its_unit_of_work(index: Index) -> None:
    def failing(uow: UnitOfWork) -> None:
        uow.events.append(event(1))
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        index.run(failing)
    assert publish(index) == 0
    assert not index.run(lambda uow: uow.events.has_unpublished(), readonly=True)


def test_an_event_id_is_unique(index: Index) -> None:
    first = event(1)
    append(index, first)
    with pytest.raises(ConflictError):
        append(index, first)
    publish(index)
    assert len(after(index, 0)) == 1


def test_a_sink_cursor_is_leased_to_one_owner_at_a_time(index: Index) -> None:
    run = index.run
    assert run(lambda uow: uow.events.cursor("ndjson:a"), readonly=True) is None
    mine = run(lambda uow: uow.events.claim("ndjson:a", "p1", T0 + timedelta(seconds=10), T0))
    assert mine is not None
    assert (mine.sink, mine.delivered, mine.lease_owner, mine.lease_until) == (
        "ndjson:a",
        0,
        "p1",
        T0 + timedelta(seconds=10),
    )
    assert run(lambda uow: uow.events.claim("ndjson:a", "p2", T0 + timedelta(seconds=15), T0)) is None
    assert run(lambda uow: uow.events.advance("ndjson:a", "p2", 3)) is False
    assert run(lambda uow: uow.events.advance("ndjson:a", "p1", 3)) is True
    assert run(lambda uow: uow.events.advance("ndjson:a", "p1", 2)) is True  # never backwards
    renewed = run(lambda uow: uow.events.claim("ndjson:a", "p1", T0 + timedelta(seconds=20), T0))
    assert renewed is not None
    assert (renewed.delivered, renewed.lease_until) == (3, T0 + timedelta(seconds=20))
    # p1 dies: once its lease has expired p2 takes the sink over where p1 left it
    later = T0 + timedelta(seconds=20)
    taken = run(lambda uow: uow.events.claim("ndjson:a", "p2", later + timedelta(seconds=10), later))
    assert taken is not None
    assert (taken.lease_owner, taken.delivered) == ("p2", 3)
    assert run(lambda uow: uow.events.advance("ndjson:a", "p1", 9)) is False
    run(lambda uow: uow.events.release("ndjson:a", "p1"))  # not p1's any more: no change
    cursor = run(lambda uow: uow.events.cursor("ndjson:a"), readonly=True)
    assert cursor is not None
    assert cursor.lease_owner == "p2"
    run(lambda uow: uow.events.release("ndjson:a", "p2"))
    free = run(lambda uow: uow.events.claim("ndjson:a", "p3", later + timedelta(seconds=1), later))
    assert free is not None
    assert (free.lease_owner, free.delivered) == ("p3", 3)
    # sinks are independent
    other = run(lambda uow: uow.events.claim("webhook:b", "p1", T0 + timedelta(seconds=1), T0))
    assert other is not None
    assert other.delivered == 0


def test_prune_forgets_only_old_events_every_sink_delivered(index: Index) -> None:
    old = [event(n, at=T0) for n in range(4)]
    new = [event(n, at=T0 + timedelta(days=10)) for n in range(2)]
    append(index, *old, *new)
    publish(index)
    cutoff = T0 + timedelta(days=1)
    assert index.run(lambda uow: uow.events.prune(cutoff, 2, 100)) == 2  # sinks are at 2
    assert [p.sequence for p in after(index, 0)] == [3, 4, 5, 6]
    assert index.run(lambda uow: uow.events.prune(cutoff, 6, 1)) == 1  # in batches
    assert index.run(lambda uow: uow.events.prune(cutoff, 6, 100)) == 1
    assert [p.sequence for p in after(index, 0)] == [5, 6]
    append(index, event(9))
    publish(index)
    assert [p.sequence for p in after(index, 0)] == [5, 6, 7]  # numbering goes on after a prune


@pytest.mark.postgres
def test_an_event_committed_late_is_published_late_never_skipped(postgres_url: str) -> None:
    """A transaction that inserted first but commits last gets the higher sequence: no reader skips it."""
    index = SqlIndex.open(postgres_url)
    appended, release = threading.Event(), threading.Event()
    slow_event, fast_event = event(1), event(2)

    def slow(uow: UnitOfWork) -> None:
        uow.events.append(slow_event)
        appended.set()
        assert release.wait(10)

    try:
        worker = threading.Thread(target=index.run, args=(slow,))
        worker.start()
        assert appended.wait(10)
        append(index, fast_event)  # inserted after the slow one, committed before it
        assert publish(index) == 1
        delivered = after(index, 0)
        assert [(p.sequence, p.event.event_id) for p in delivered] == [(1, fast_event.event_id)]
        release.set()
        worker.join(10)
        assert publish(index) == 1
        assert [(p.sequence, p.event.event_id) for p in after(index, delivered[-1].sequence)] == [
            (2, slow_event.event_id)
        ]
    finally:
        release.set()
        index.close()


@pytest.mark.postgres
def test_concurrent_publishers_give_each_event_one_sequence(postgres_url: str) -> None:
    index = SqlIndex.open(postgres_url)
    try:
        append(index, *[event(n) for n in range(60)])
        barrier = threading.Barrier(4)
        results: list[int] = []

        def publisher() -> None:
            barrier.wait()
            while True:
                try:
                    count = publish(index, limit=7)
                except UnavailableError:  # lost more races than the index retries: the loop tries again
                    continue
                if count == 0:
                    return
                results.append(count)

        threads = [threading.Thread(target=publisher) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(results) == 60
        assert [p.sequence for p in after(index, 0)] == list(range(1, 61))
    finally:
        index.close()
