"""What an event sink is: a named destination that takes published events in order and says how many it took.

``deliver`` receives consecutive events in sequence order and answers how many of them, from the first, it has
durably handed over (the NDJSON file fsynced, the webhook answered 2xx, JetStream acknowledged). Delivery moves
the sink's cursor by exactly that many and offers the rest again later, so a sink never sees a later event before
an earlier one was taken, and an event it took may be offered again only after a crash (at least once). A sink
that fails answers fewer than it was given (0 included) instead of raising. It returns by ``deadline`` (a
``time.monotonic()`` value: the delivery lease must not expire while it waits, or another process could deliver
meanwhile); ``stop`` makes it give up waits (retries, backoff) at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    """One event as sinks send it: its feed sequence and the EventBridge event (``events.model.render``)."""

    sequence: int
    event: dict[str, Any]

    @property
    def event_id(self) -> str:
        """The event's ``id`` (a version-4 UUID): the deduplication key of consumers and of JetStream."""
        return str(self.event["id"])

    def body(self) -> bytes:
        """The event as compact JSON, keys in the guide's order."""
        return json.dumps(self.event, separators=(",", ":"), ensure_ascii=False).encode()


class EventSink(Protocol):
    """A destination of events."""

    @property
    def name(self) -> str:
        """The stable key of the sink's cursor in the index (same sink after a restart: same name)."""
        ...

    def deliver(self, batch: list[Outgoing], deadline: float) -> int:
        """Hand over ``batch`` in order, returning by ``deadline`` (monotonic); how many of its first events were
        taken."""
        ...

    def stop(self) -> None:
        """Give up waiting (retries, backoff) and release connections."""
        ...
