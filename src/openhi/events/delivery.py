"""Delivering published events to the sinks: at least once, in order, one deliverer per sink at a time.

Every server process runs a delivery loop per configured sink (``bootstrap``: a ``Periodic`` each). A pass first
publishes pending events (``outbox.EventFeed.publish``), then, when the sink's cursor is behind, takes the
sink's lease in the index (compare-and-set, ``EventRepository.claim``): whoever holds an unexpired lease delivers,
the others skip the pass, so a sink sees one deliverer at a time whatever the number of processes. The holder
reads published events after the cursor in sequence order, hands a batch to the sink, and moves the cursor by what
the sink took (renewing the lease in the same unit of work), then releases the lease at the end of the pass. A pass
lasts at most half a lease, and sinks return by that deadline (webhook backoff, broker acks), so the lease cannot
expire while its holder still delivers.

At least once: the cursor moves only after the sink has taken the events (fsync, 2xx, JetStream ack), so a
process killed in between delivers them again after the restart (or another process does, once the lease
expired); consumers deduplicate by the event ``id``. In order: the cursor never skips (published sequences have
no gaps, ``outbox.py``) and a sink that fails on an event gets it again before any later one, which also keeps the
order per resource.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

from openhi.clock import Clock
from openhi.events.model import render
from openhi.events.outbox import EventFeed
from openhi.events.sinks.port import EventSink, Outgoing
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)

DELIVERY_BATCH = 100


class EventDelivery:
    """Runs delivery passes for a fixed set of sinks."""

    def __init__(
        self,
        index: Index,
        feed: EventFeed,
        sinks: Sequence[EventSink],
        clock: Clock,
        *,
        lease_seconds: float = 15.0,
        batch: int = DELIVERY_BATCH,
    ) -> None:
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"event sinks need distinct names, got {names}")
        self._index = index
        self._feed = feed
        self._sinks = {sink.name: sink for sink in sinks}
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._pass_budget = lease_seconds / 2  # a pass renews its lease long before it expires
        self._batch = batch
        self.owner = f"openhi-{uuid.uuid4().hex[:12]}"
        self._stopping = threading.Event()

    @property
    def sink_names(self) -> list[str]:
        """The configured sinks, by name."""
        return list(self._sinks)

    def delivered_by_every_sink(self, uow: UnitOfWork) -> int:
        """The highest sequence every configured sink has delivered (the last published one when none is)."""
        cursors = [uow.events.cursor(name) for name in self._sinks]
        return min((cursor.delivered if cursor else 0 for cursor in cursors), default=uow.events.last_sequence())

    def run(self, sink_name: str) -> int:
        """One pass for one sink; how many events it delivered."""
        if self._stopping.is_set():
            return 0
        sink = self._sinks[sink_name]
        self._feed.publish()
        behind = self._index.run(
            lambda uow: (
                (cursor.delivered if (cursor := uow.events.cursor(sink.name)) else 0) < uow.events.last_sequence()
            ),
            readonly=True,
        )
        if not behind:
            return 0
        now = self._clock()
        claimed = self._index.run(lambda uow: uow.events.claim(sink.name, self.owner, now + self._lease, now))
        if claimed is None:
            return 0
        try:
            return self._deliver(sink, claimed.delivered)
        finally:
            self._index.run(lambda uow: uow.events.release(sink.name, self.owner))

    def _deliver(self, sink: EventSink, position: int) -> int:
        delivered = 0
        deadline = time.monotonic() + self._pass_budget  # the sinks return by then: the lease is still ours
        while not self._stopping.is_set() and time.monotonic() < deadline:
            found = self._feed.read(position, self._batch)
            if not found:
                break
            batch = [Outgoing(published.sequence, render(published.event, self._feed.origin)) for published in found]
            taken = sink.deliver(batch, deadline)
            if taken > 0:
                position = batch[taken - 1].sequence
                if not self._advance(sink.name, position):
                    log.warning("event sink %s: lease lost to another process; stopping this pass", sink.name)
                    return delivered
                delivered += taken
            if taken < len(batch):
                break  # the sink failed: the rest is offered again on a later pass, in the same order
        return delivered

    def _advance(self, sink_name: str, position: int) -> bool:
        now = self._clock()

        def work(uow: UnitOfWork) -> bool:
            if not uow.events.advance(sink_name, self.owner, position):
                return False
            return uow.events.claim(sink_name, self.owner, now + self._lease, now) is not None

        return self._index.run(work)

    def stop(self) -> None:
        """Stop starting passes and make the sinks give up their waits."""
        self._stopping.set()
        for sink in self._sinks.values():
            sink.stop()
