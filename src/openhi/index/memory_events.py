"""``EventRepository`` in memory: the event outbox of ``openhi.events`` (migration 0007 in SQL).

Units of work of ``MemoryIndex`` run one at a time, so an appended event is committed with its unit of work and
publishing in append order is publishing in commit order. Times are kept in UTC; an event id is unique, as the
SQL column is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from openhi.errors import ConflictError
from openhi.events.model import ChangeEvent, PublishedEvent, SinkCursor
from openhi.index.memory_state import MemoryState, utc


@dataclass(frozen=True)
class MemoryEventRepository:
    """``EventRepository`` over the state."""

    state: MemoryState

    def append(self, event: ChangeEvent) -> None:
        if any(stored.event_id == event.event_id for stored, _ in self.state.events):
            raise ConflictError(f"Event {event.event_id} is already in the outbox")
        self.state.events.append((replace(event, time=utc(event.time)), None))

    def has_unpublished(self) -> bool:
        return any(sequence is None for _, sequence in self.state.events)

    def publish(self, limit: int) -> int:
        given = 0
        for position, (event, sequence) in enumerate(self.state.events):
            if given >= limit:
                break
            if sequence is None:
                self.state.event_last_sequence += 1
                self.state.events[position] = (event, self.state.event_last_sequence)
                given += 1
        return given

    def last_sequence(self) -> int:
        return self.state.event_last_sequence

    def published_after(self, sequence: int, limit: int) -> list[PublishedEvent]:
        found = [PublishedEvent(s, e) for e, s in self.state.events if s is not None and s > sequence]
        found.sort(key=lambda published: published.sequence)
        return found[: max(limit, 0)]

    def cursor(self, sink: str) -> SinkCursor | None:
        return self.state.event_cursors.get(sink)

    def claim(self, sink: str, owner: str, until: datetime, now: datetime) -> SinkCursor | None:
        current = self.state.event_cursors.get(sink) or SinkCursor(sink, 0)
        free = current.lease_owner in (None, owner) or current.lease_until is None or current.lease_until <= utc(now)
        if not free:
            return None
        claimed = replace(current, lease_owner=owner, lease_until=utc(until))
        self.state.event_cursors[sink] = claimed
        return claimed

    def advance(self, sink: str, owner: str, delivered: int) -> bool:
        current = self.state.event_cursors.get(sink)
        if current is None or current.lease_owner != owner:
            return False
        self.state.event_cursors[sink] = replace(current, delivered=max(current.delivered, delivered))
        return True

    def release(self, sink: str, owner: str) -> None:
        current = self.state.event_cursors.get(sink)
        if current is not None and current.lease_owner == owner:
            self.state.event_cursors[sink] = replace(current, lease_owner=None, lease_until=None)

    def prune(self, before: datetime, up_to: int, limit: int) -> int:
        cutoff = utc(before)
        doomed = [
            position
            for position, (event, sequence) in enumerate(self.state.events)
            if sequence is not None and sequence <= up_to and event.time < cutoff
        ][: max(limit, 0)]
        for position in reversed(doomed):
            del self.state.events[position]
        return len(doomed)
