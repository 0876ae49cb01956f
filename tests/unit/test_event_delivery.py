"""Publishing, the pull feed and delivery to sinks over the in-memory index; the NDJSON and webhook sinks for real
(a loopback receiver that refuses the first requests); the ``event_sinks`` setting."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support.event_examples import check_against_guide
from tests.support.webhook_receiver import WebhookReceiver

from openhi.access.guard import RequestAccess, acting_as
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import AccessDeniedError, ValidationError
from openhi.events import emit
from openhi.events.delivery import EventDelivery
from openhi.events.model import EventOrigin
from openhi.events.outbox import EventFeed, parse_position
from openhi.events.sinks.factory import sinks_from_setting
from openhi.events.sinks.nats import NatsSink
from openhi.events.sinks.ndjson import NdjsonSink
from openhi.events.sinks.port import EventSink, Outgoing
from openhi.events.sinks.webhook import WebhookSink
from openhi.iam.policy import PolicyDocument
from openhi.iam.principals import Caller, CallerKind, user_arn
from openhi.ids import new_id
from openhi.index.memory import MemoryIndex
from openhi.index.port import UnitOfWork

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORIGIN = EventOrigin("123456789012", "us-east-1")


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingSink:
    """Takes ``accept`` events per call (all when None), records them."""

    name: str = "recording"
    accept: int | None = None
    seen: list[Outgoing] = field(default_factory=list)

    def deliver(self, batch: list[Outgoing], deadline: float) -> int:
        assert deadline > time.monotonic()
        taken = batch if self.accept is None else batch[: self.accept]
        self.seen.extend(taken)
        return len(taken)

    def stop(self) -> None:
        return


def changes(index: MemoryIndex, count: int) -> list[str]:
    """``count`` data stores created and made ACTIVE (two events each); their ids."""
    ids = []
    for n in range(count):
        datastore = Datastore(
            new_id(), f"store-{n}", DatastoreStatus.CREATING, LosslessStorageFormat.HTJ2K, T0, T0, new_id()
        )

        def work(uow: UnitOfWork, datastore: Datastore = datastore) -> None:
            uow.datastores.add(datastore)
            emit.datastore_changed(uow, datastore)
            emit.transition_datastore(uow, datastore, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, T0)

        index.run(work)
        ids.append(datastore.datastore_id)
    return ids


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feed(index: MemoryIndex, clock: Clock) -> EventFeed:
    return EventFeed(index, ORIGIN, clock, retention_days=1)


def delivery_of(index: MemoryIndex, feed: EventFeed, clock: Clock, *sinks: EventSink) -> EventDelivery:
    return EventDelivery(index, feed, list(sinks), clock, lease_seconds=10, batch=3)


def test_events_are_delivered_in_order_and_the_cursor_follows(
    index: MemoryIndex, feed: EventFeed, clock: Clock
) -> None:
    ids = changes(index, 4)
    sink = RecordingSink()
    delivery = delivery_of(index, feed, clock, sink)
    assert delivery.run(sink.name) == 8
    assert [item.sequence for item in sink.seen] == list(range(1, 9))
    assert [(item.event["detail"]["datastoreId"], item.event["detail-type"]) for item in sink.seen] == [
        (datastore_id, detail_type)
        for datastore_id in ids
        for detail_type in ("Data Store Creating", "Data Store Created")
    ]
    for item in sink.seen:
        check_against_guide(item.event)
    cursor = index.run(lambda uow: uow.events.cursor(sink.name), readonly=True)
    assert cursor is not None
    assert (cursor.delivered, cursor.lease_owner) == (8, None)  # released at the end of the pass
    assert delivery.run(sink.name) == 0
    changes(index, 1)
    assert delivery.run(sink.name) == 2
    assert [item.sequence for item in sink.seen] == list(range(1, 11))


def test_a_sink_that_fails_gets_the_rest_again_in_the_same_order(
    index: MemoryIndex, feed: EventFeed, clock: Clock
) -> None:
    changes(index, 3)
    sink = RecordingSink(accept=1)
    delivery = delivery_of(index, feed, clock, sink)
    assert delivery.run(sink.name) == 1  # took one of a batch of three: the pass stops there
    sink.accept = 0
    assert delivery.run(sink.name) == 0
    sink.accept = None
    assert delivery.run(sink.name) == 5
    assert [item.sequence for item in sink.seen] == list(range(1, 7))


def test_a_deliverer_that_dies_before_moving_the_cursor_delivers_again(
    index: MemoryIndex, feed: EventFeed, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes(index, 1)
    sink = RecordingSink()
    dying = delivery_of(index, feed, clock, sink)

    def killed(sink_name: str, position: int) -> bool:
        raise SystemExit("killed between the sink's fsync and the cursor update")

    monkeypatch.setattr(dying, "_advance", killed)
    with pytest.raises(SystemExit):
        dying.run(sink.name)
    assert [item.sequence for item in sink.seen] == [1, 2]
    # A process killed by SIGKILL runs no ``finally``: its lease stays until it expires.
    lease_until = clock.now + timedelta(seconds=10)
    index.run(lambda uow: uow.events.claim(sink.name, dying.owner, lease_until, clock.now))
    survivor = delivery_of(index, feed, clock, sink)
    assert survivor.run(sink.name) == 0  # the dead process's lease has not expired yet
    clock.now += timedelta(seconds=11)
    assert survivor.run(sink.name) == 2
    assert [item.sequence for item in sink.seen] == [1, 2, 1, 2]  # at least once, in order


def test_one_deliverer_per_sink_at_a_time(index: MemoryIndex, feed: EventFeed, clock: Clock) -> None:
    changes(index, 1)
    first, second = RecordingSink(), RecordingSink()
    one, other = delivery_of(index, feed, clock, first), delivery_of(index, feed, clock, second)
    index.run(lambda uow: uow.events.claim("recording", one.owner, clock.now + timedelta(seconds=10), clock.now))
    assert other.run("recording") == 0
    assert second.seen == []
    assert one.run("recording") == 2  # the holder delivers (and renews, then releases)
    changes(index, 1)
    assert other.run("recording") == 2
    assert [item.sequence for item in first.seen + second.seen] == [1, 2, 3, 4]


def test_sinks_have_their_own_cursors(index: MemoryIndex, feed: EventFeed, clock: Clock) -> None:
    changes(index, 1)
    fast, slow = RecordingSink("fast"), RecordingSink("slow", accept=0)
    delivery = delivery_of(index, feed, clock, fast, slow)
    assert (delivery.run("fast"), delivery.run("slow")) == (2, 0)
    assert index.run(delivery.delivered_by_every_sink, readonly=True) == 0
    slow.accept = None
    assert delivery.run("slow") == 2
    assert index.run(delivery.delivered_by_every_sink, readonly=True) == 2


def test_pruning_keeps_what_a_sink_has_not_delivered(index: MemoryIndex, feed: EventFeed, clock: Clock) -> None:
    changes(index, 2)
    sink = RecordingSink(accept=1)
    delivery = delivery_of(index, feed, clock, sink)
    delivery.run(sink.name)
    clock.now += timedelta(days=2)
    assert feed.prune(delivery.delivered_by_every_sink) == 1
    assert [sequence for sequence, _ in feed.page(0, 10).events] == [2, 3, 4]
    assert EventFeed(index, ORIGIN, clock, retention_days=0).prune(delivery.delivered_by_every_sink) == 0


def test_the_feed_publishes_pending_events_then_pages(index: MemoryIndex, feed: EventFeed) -> None:
    changes(index, 3)
    first = feed.page(0, 4)
    assert [sequence for sequence, _ in first.events] == [1, 2, 3, 4]
    assert first.next_sequence == 4
    second = feed.page(first.next_sequence, 4)
    assert [sequence for sequence, _ in second.events] == [5, 6]
    assert second.next_sequence == 6
    assert feed.page(6, 4).to_json() == {"events": [], "nextSequence": 6}
    body = first.to_json()["events"][0]
    assert list(body) == ["sequence", "event"]
    check_against_guide(body["event"])


def test_the_feed_asks_the_guard_for_list_events(index: MemoryIndex, feed: EventFeed) -> None:
    changes(index, 1)
    nobody = Caller(user_arn("123456789012", "nobody"), "123456789012", CallerKind.IAM_USER)
    with acting_as(RequestAccess(nobody, "us-east-1", "ListEvents")), pytest.raises(AccessDeniedError) as denied:
        feed.page(0, 10)
    assert "medical-imaging:ListEvents" in denied.value.message
    allowed = PolicyDocument.parse(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "medical-imaging:ListEvents", "Resource": "*"},
        }
    )
    reader = Caller(user_arn("123456789012", "reader"), "123456789012", CallerKind.IAM_USER, (allowed,))
    with acting_as(RequestAccess(reader, "us-east-1", "ListEvents")):
        assert len(feed.page(0, 10).events) == 2


@pytest.mark.parametrize(
    ("raw", "low", "high", "expected"),
    [(None, 0, None, 7), ("", 0, None, 7), ("12", 0, None, 12), ("1000", 1, 1000, 1000)],
)
def test_query_positions(raw: str | None, low: int, high: int | None, expected: int) -> None:
    assert parse_position("after", raw, 7, low, high) == expected


@pytest.mark.parametrize(("raw", "high"), [("x", None), ("-1", None), ("0", 1000), ("1001", 1000), ("1.5", None)])
def test_bad_query_positions_are_validation_errors(raw: str, high: int | None) -> None:
    with pytest.raises(ValidationError):
        parse_position("limit", raw, 1, 0 if high is None else 1, high)


# -- sinks ------------------------------------------------------------------------------------------------------------


def soon() -> float:
    """A pass deadline a minute away."""
    return time.monotonic() + 60


def outgoing(count: int) -> list[Outgoing]:
    return [
        Outgoing(n, {"version": "0", "id": f"id-{n}", "detail": {"n": n, "name": "DOE^ÅSA"}})
        for n in range(1, count + 1)
    ]


def test_ndjson_sink_appends_one_event_per_line(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "events.ndjson"
    sink = NdjsonSink(path)
    assert sink.name == f"ndjson:{path}"
    assert sink.deliver(outgoing(2), soon()) == 2
    assert sink.deliver(outgoing(3)[2:], soon()) == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["id-1", "id-2", "id-3"]
    assert json.loads(lines[0])["detail"]["name"] == "DOE^ÅSA"
    assert sink.deliver([], soon()) == 0


def test_ndjson_sink_that_cannot_write_takes_nothing(tmp_path: Path) -> None:
    (tmp_path / "events.ndjson").mkdir()
    assert NdjsonSink(tmp_path / "events.ndjson").deliver(outgoing(1), soon()) == 0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(fail_first=3) as started:
        yield started


def test_webhook_sink_retries_with_growing_backoff_until_accepted(receiver: WebhookReceiver) -> None:
    sink = WebhookSink(receiver.url, backoff_seconds=0.02, attempts_per_pass=10, headers={"Authorization": "Bearer t"})
    try:
        assert sink.deliver(outgoing(3), soon()) == 3
    finally:
        sink.stop()
    assert [item.event["id"] for item in receiver.refused()] == ["id-1"] * 3
    accepted = receiver.accepted()
    assert [item.event["id"] for item in accepted] == ["id-1", "id-2", "id-3"]
    assert [item.headers["x-openhi-event-sequence"] for item in accepted] == ["1", "2", "3"]
    assert {item.headers["x-openhi-event-id"] for item in accepted} == {"id-1", "id-2", "id-3"}
    assert {item.headers["authorization"] for item in receiver.received} == {"Bearer t"}
    assert accepted[0].headers["content-type"] == "application/json"
    times = [item.at for item in receiver.received[:4]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # equal jitter: the n-th wait is at least half of 0.02 * 2^(n-1)
    assert gaps[0] >= 0.01
    assert gaps[1] >= 0.02
    assert gaps[2] >= 0.04
    assert sink.consecutive_failures == 0


def test_webhook_sink_gives_up_a_pass_and_keeps_backing_off() -> None:
    with WebhookReceiver(fail_first=100, fail_status=500) as refusing:
        sink = WebhookSink(refusing.url, backoff_seconds=0.01, attempts_per_pass=2)
        try:
            assert sink.deliver(outgoing(2), soon()) == 0
            assert sink.consecutive_failures == 2
            assert sink.deliver(outgoing(2), soon()) == 0
            assert sink.consecutive_failures == 4
        finally:
            sink.stop()
        assert [item.event["id"] for item in refusing.received] == ["id-1"] * 4  # never the second before the first


def test_webhook_sink_unreachable_is_a_failure_not_an_error() -> None:
    sink = WebhookSink("http://127.0.0.1:9/hook", backoff_seconds=0.01, attempts_per_pass=2, timeout_seconds=0.5)
    try:
        assert sink.deliver(outgoing(1), soon()) == 0
    finally:
        sink.stop()


def test_webhook_backoff_is_capped_with_equal_jitter() -> None:
    sink = WebhookSink("http://127.0.0.1:9/hook", backoff_seconds=0.5, max_backoff_seconds=8)
    try:
        for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (30, 8.0)]:
            for _ in range(20):
                assert ceiling / 2 <= sink.backoff(failures) <= ceiling
    finally:
        sink.stop()


def test_a_webhook_sink_returns_by_the_pass_deadline() -> None:
    with WebhookReceiver(fail_first=100) as refusing:
        sink = WebhookSink(refusing.url, backoff_seconds=30, attempts_per_pass=5)
        try:
            started = time.monotonic()
            assert sink.deliver(outgoing(1), started + 0.3) == 0
            assert len(refusing.received) == 1  # the next attempt would come after the deadline
            assert sink.deliver(outgoing(1), time.monotonic() + 0.2) == 0  # still backing off: no request
            assert len(refusing.received) == 1
        finally:
            sink.stop()


def test_stopping_a_webhook_sink_ends_its_wait() -> None:
    with WebhookReceiver(fail_first=100) as refusing:
        sink = WebhookSink(refusing.url, backoff_seconds=30, attempts_per_pass=5)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(sink.deliver(outgoing(1), soon())))
        thread.start()
        deadline = time.monotonic() + 5
        while not refusing.received and time.monotonic() < deadline:
            time.sleep(0.01)
        sink.stop()
        thread.join(5)
        assert not thread.is_alive()
        assert result == [0]


# -- the setting ------------------------------------------------------------------------------------------------------


def test_sinks_from_the_setting(tmp_path: Path) -> None:
    text = json.dumps(
        [
            {"type": "ndjson", "path": str(tmp_path / "e.ndjson")},
            {"type": "webhook", "url": "http://127.0.0.1:1/hook", "headers": {"X-A": "b"}, "backoff_seconds": 0.1},
            {"type": "nats", "url": "nats://127.0.0.1:4222", "stream": "openhi", "subject": "openhi.events"},
            {"type": "ndjson", "path": str(tmp_path / "f.ndjson"), "name": "archive"},
        ]
    )
    sinks = sinks_from_setting(text)
    try:
        assert [type(sink) for sink in sinks] == [NdjsonSink, WebhookSink, NatsSink, NdjsonSink]
        assert [sink.name for sink in sinks] == [
            f"ndjson:{tmp_path / 'e.ndjson'}",
            "webhook:http://127.0.0.1:1/hook",
            "nats:nats://127.0.0.1:4222/openhi/openhi.events",
            "archive",
        ]
    finally:
        for sink in sinks:
            sink.stop()
    assert sinks_from_setting("  ") == []
    long = sinks_from_setting(json.dumps([{"type": "webhook", "url": "http://h/" + "x" * 300}]))
    assert len(long[0].name) <= 200
    long[0].stop()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"type": "ndjson"}',
        '[{"type": "kafka", "url": "x"}]',
        '[{"type": "ndjson"}]',
        '[{"type": "ndjson", "path": "/tmp/x", "colour": "red"}]',
        '[{"type": "webhook", "url": "ftp://h/x"}]',
        '[{"type": "webhook", "url": "http://h/x", "backoff_seconds": -1}]',
        '[{"type": "webhook", "url": "http://h/x", "headers": {"a": 1}}]',
        '[{"type": "nats", "url": "http://h", "stream": "s", "subject": "a.b"}]',
        '[{"type": "nats", "url": "nats://h", "stream": "s", "subject": "a.*"}]',
        '[{"type": "nats", "url": "nats://h", "stream": "s.t", "subject": "a.b"}]',
        '[{"type": "ndjson", "path": "/tmp/a", "name": "x"}, {"type": "ndjson", "path": "/tmp/b", "name": "x"}]',
        '[{"type": "ndjson", "path": "/tmp/a", "name": ""}]',
    ],
)
def test_bad_sink_settings_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        sinks_from_setting(text)
    assert refused.value.field == "event_sinks"
