"""Publishing the outbox in commit order, and the pull API over it (an OpenHI extension, like Azure's change feed).

Why a publication step. Events are appended in the unit of work of their change (``emit.py``); the ``id`` an
event gets when appended is an identity (PostgreSQL BIGSERIAL, SQLite rowid), taken at insert time. Transactions
commit in another order than they insert: on PostgreSQL a transaction holding id 10 may commit after the one
holding id 11, so a reader that delivered 11 and moved its cursor past it would never see 10. Rather than guess
a settle delay or track in-flight transactions, the outbox gives every event a second number when it is
*published*: ``publish`` takes committed events that have none, in id order, and numbers them ``last + 1,
last + 2 ...`` from one counter row, one publisher at a time (the update of that row serializes publishers; the
index re-runs the loser). A transaction that commits late is simply published late, with a higher number. So the
published ``sequence`` has no gaps, never goes back, and a cursor over it never skips an event: readers (this
pull API, the sinks of ``delivery.py``) only ever read published events.

Order per resource. Two changes of one resource (a data store, an import job, an image set) write the same row,
so the index serializes them: the second unit of work appends its event after the first one committed, hence with
a higher id, and is published in the same batch after it or in a later batch. Events of one resource are
therefore published, and delivered, in the order of the changes.

The pull API (``GET /events?after=N&limit=M``) answers the published events with a sequence above ``after``;
``nextSequence`` is the ``after`` of the next call, so a consumer that stores it catches up after any downtime
(within the retention of ``prune``). It first publishes what is pending, so a caller sees its own changes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from openhi.access import guard
from openhi.clock import Clock
from openhi.errors import UnavailableError, ValidationError
from openhi.events.model import EventOrigin, PublishedEvent, render
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)

PUBLISH_BATCH = 500
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class FeedPage:
    """One answer of the pull API: ``(sequence, EventBridge event)`` pairs and the ``after`` of the next call."""

    events: list[tuple[int, dict[str, Any]]]
    next_sequence: int

    def to_json(self) -> dict[str, Any]:
        """``{"events": [{"sequence": n, "event": {...}}], "nextSequence": m}``."""
        return {
            "events": [{"sequence": sequence, "event": event} for sequence, event in self.events],
            "nextSequence": self.next_sequence,
        }


def parse_position(name: str, raw: str | None, default: int, low: int, high: int | None = None) -> int:
    """A query parameter that must be an integer in ``[low, high]``; ValidationException otherwise."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer, got {raw!r}", field=name) from None
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValidationError(f"{name} must be {bounds}, got {value}", field=name)
    return value


class EventFeed:
    """Publishes pending events and lists published ones."""

    def __init__(self, index: Index, origin: EventOrigin, clock: Clock, retention_days: float = 0.0) -> None:
        self._index = index
        self._origin = origin
        self._clock = clock
        self._retention = timedelta(days=retention_days) if retention_days > 0 else None

    @property
    def origin(self) -> EventOrigin:
        """The account and region every event is rendered with."""
        return self._origin

    def publish(self) -> int:
        """Number every committed unpublished event (in batches); how many were published.

        A publisher that keeps losing the race to others (the index gave up retrying) stops quietly: the others
        publish, and the next call catches up."""
        total = 0
        try:
            while self._index.run(lambda uow: uow.events.has_unpublished(), readonly=True):
                published = self._index.run(lambda uow: uow.events.publish(PUBLISH_BATCH))
                total += published
                if published < PUBLISH_BATCH:
                    break
        except UnavailableError as exc:
            log.info("events: publishing postponed (%s)", exc.message)
        return total

    def page(self, after: int, limit: int) -> FeedPage:
        """Published events with a sequence above ``after``, at most ``limit`` (ListEvents, the pull API)."""
        guard.require("ListEvents")
        self.publish()  # read your writes; when busy, what is published already
        found = self._index.run(lambda uow: uow.events.published_after(after, limit), readonly=True)
        rendered = [(published.sequence, render(published.event, self._origin)) for published in found]
        return FeedPage(rendered, found[-1].sequence if found else after)

    def read(self, after: int, limit: int) -> list[PublishedEvent]:
        """Published events after ``after`` (for delivery; no authorization: no caller)."""
        return self._index.run(lambda uow: uow.events.published_after(after, limit), readonly=True)

    def prune(self, delivered_by_every_sink: Callable[[UnitOfWork], int]) -> int:
        """Forget events older than the retention that every configured sink has delivered; how many."""
        if self._retention is None:
            return 0
        before = self._clock() - self._retention

        def work(uow: UnitOfWork) -> int:
            return uow.events.prune(before, delivered_by_every_sink(uow), PRUNE_BATCH)

        return self._index.run(work)
