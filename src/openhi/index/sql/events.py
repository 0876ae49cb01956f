"""``EventRepository`` on SQL: the ``events``, ``event_sequence`` and ``event_cursors`` tables of migration 0007.

Appending inserts a row without a sequence in the caller's transaction, so the event commits or rolls back with
its change. Publishing reads the unpublished rows in append order and takes that many numbers from the one
``event_sequence`` row: the update of that row is the serialization point of publishers (on PostgreSQL a second
publisher waits for the row, then fails with a serialization error and ``SqlIndex.run`` runs it again; SQLite has
one writer), so sequences are given without gaps to committed rows only. On PostgreSQL publishing runs at
REPEATABLE READ (its first statement says so; it must start its unit of work): the counter row already serializes
publishers, and a SERIALIZABLE publisher's predicate locks on ``events`` would add read-write dependencies on every
unit of work that appends an event, making the index abort more of those under load. Leases of delivery cursors are
compare-and-set updates, as import job leases are (``import_jobs.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from openhi.errors import ConflictError
from openhi.events.model import ChangeEvent, PublishedEvent, SinkCursor
from openhi.index.sql.schema import event_cursors, event_sequence, events

SEQUENCE_ROW = 1


def _event(row: Row[Any]) -> ChangeEvent:
    return ChangeEvent(
        event_id=row.event_id,
        detail_type=row.detail_type,
        time=row.occurred_at,
        datastore_id=row.datastore_id,
        image_set_id=row.image_set_id,
        source_image_set_id=row.source_image_set_id,
        detail=json.loads(row.detail),
    )


def _cursor(row: Row[Any]) -> SinkCursor:
    return SinkCursor(row.sink, int(row.delivered), row.lease_owner, row.lease_until)


@dataclass(frozen=True)
class SqlEventRepository:
    """``EventRepository`` on one connection."""

    conn: Connection

    def append(self, event: ChangeEvent) -> None:
        values = {
            "event_id": event.event_id,
            "detail_type": event.detail_type,
            "occurred_at": event.time,
            "datastore_id": event.datastore_id,
            "image_set_id": event.image_set_id,
            "source_image_set_id": event.source_image_set_id,
            "detail": json.dumps(dict(event.detail), separators=(",", ":")),
        }
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(events).values(values))
        except IntegrityError as exc:
            raise ConflictError(f"Event {event.event_id} is already in the outbox") from exc

    def has_unpublished(self) -> bool:
        query = select(events.c.id).where(events.c.sequence.is_(None)).limit(1)
        return self.conn.execute(query).first() is not None

    def publish(self, limit: int) -> int:
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        query = select(events.c.id).where(events.c.sequence.is_(None)).order_by(events.c.id).limit(max(limit, 0))
        ids = [int(value) for value in self.conn.execute(query).scalars()]
        if not ids:
            return 0
        last = self.conn.execute(
            update(event_sequence)
            .where(event_sequence.c.id == SEQUENCE_ROW)
            .values(last=event_sequence.c.last + len(ids))
            .returning(event_sequence.c.last)
        ).scalar_one()
        first = int(last) - len(ids) + 1
        self.conn.execute(
            update(events).where(events.c.id == bindparam("row_id")).values(sequence=bindparam("row_sequence")),
            [{"row_id": row_id, "row_sequence": first + n} for n, row_id in enumerate(ids)],
        )
        return len(ids)

    def last_sequence(self) -> int:
        query = select(event_sequence.c.last).where(event_sequence.c.id == SEQUENCE_ROW)
        return int(self.conn.execute(query).scalar_one())

    def published_after(self, sequence: int, limit: int) -> list[PublishedEvent]:
        query = select(events).where(events.c.sequence > sequence).order_by(events.c.sequence).limit(max(limit, 0))
        return [PublishedEvent(int(row.sequence), _event(row)) for row in self.conn.execute(query)]

    def cursor(self, sink: str) -> SinkCursor | None:
        row = self.conn.execute(select(event_cursors).where(event_cursors.c.sink == sink)).one_or_none()
        return None if row is None else _cursor(row)

    def claim(self, sink: str, owner: str, until: datetime, now: datetime) -> SinkCursor | None:
        if self.cursor(sink) is None:
            try:
                with self.conn.begin_nested():
                    values = {"sink": sink, "delivered": 0, "lease_owner": owner, "lease_until": until}
                    self.conn.execute(insert(event_cursors).values(values))
            except IntegrityError:
                return None  # another process created it meanwhile and holds it
            return self.cursor(sink)
        claimed = self.conn.execute(
            update(event_cursors)
            .where(
                event_cursors.c.sink == sink,
                or_(
                    event_cursors.c.lease_owner.is_(None),
                    event_cursors.c.lease_owner == owner,
                    event_cursors.c.lease_until.is_(None),
                    event_cursors.c.lease_until <= now,
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return self.cursor(sink) if claimed.rowcount == 1 else None

    def advance(self, sink: str, owner: str, delivered: int) -> bool:
        held = event_cursors.c.sink == sink, event_cursors.c.lease_owner == owner
        moved = self.conn.execute(
            update(event_cursors).where(*held, event_cursors.c.delivered < delivered).values(delivered=delivered)
        )
        if moved.rowcount == 1:
            return True
        return self.conn.execute(select(event_cursors.c.sink).where(*held)).first() is not None

    def release(self, sink: str, owner: str) -> None:
        self.conn.execute(
            update(event_cursors)
            .where(event_cursors.c.sink == sink, event_cursors.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    def prune(self, before: datetime, up_to: int, limit: int) -> int:
        doomed = (
            select(events.c.id)
            .where(events.c.sequence.is_not(None), events.c.sequence <= up_to, events.c.occurred_at < before)
            .order_by(events.c.sequence)
            .limit(max(limit, 0))
        )
        ids = [int(value) for value in self.conn.execute(doomed).scalars()]
        if not ids:
            return 0
        return int(self.conn.execute(delete(events).where(events.c.id.in_(ids))).rowcount)
