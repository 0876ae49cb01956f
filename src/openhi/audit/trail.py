"""The audit trail as a call observer: classify, filter, build, queue (issue 7 part 3; guide 20019-20108).

``AuditTrail.observe`` runs on the event loop after each answered call (``openhi.api.observe``), so it does only
the cheap part: it drops data events when they are switched off (``audit_data_events``), drops the response of a
call whose record keeps none (a frame, a metadata blob: nothing large waits in the queue) and queues the call.
The writer thread builds the record (``record.build_event``: sanitized) and writes it. ``from_settings`` reads
the ``audit_*`` settings; ``start`` / ``close`` belong to the server's start-up and shutdown (the record files are
opened by the process that serves, never by the parent of ``--workers N``, which only prepares).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from openhi.api.observe import CallRecord
from openhi.audit.categories import Category, categorize
from openhi.audit.files import RotatingNdjson
from openhi.audit.record import AuditContext, build_event, dropped_records_event, keeps_response
from openhi.audit.writer import AuditWriter
from openhi.clock import Clock, utc_now
from openhi.config import Settings
from openhi.errors import ValidationError


@dataclass(frozen=True)
class AuditOptions:
    """The ``audit_*`` settings, checked."""

    directory: Path
    data_events: bool
    max_bytes: int
    rotate_daily: bool
    keep_files: int
    queue_size: int
    fsync: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditOptions:
        """Read and check the settings (ValidationError naming the setting)."""
        for name in ("audit_max_bytes", "audit_keep_files"):
            if getattr(settings, name) < 0:
                raise ValidationError(f"setting {name!r} must be >= 0", field=name)
        if settings.audit_queue_size < 1:
            raise ValidationError("setting 'audit_queue_size' must be >= 1", field="audit_queue_size")
        directory = Path(settings.audit_dir) if settings.audit_dir else settings.data_dir / "audit"
        return cls(
            directory=directory.resolve(),
            data_events=settings.audit_data_events,
            max_bytes=settings.audit_max_bytes,
            rotate_daily=settings.audit_rotate_daily,
            keep_files=settings.audit_keep_files,
            queue_size=settings.audit_queue_size,
            fsync=settings.audit_fsync,
        )


class AuditTrail:
    """Records every answered call (but data events when they are off) through an ``AuditWriter``."""

    def __init__(
        self,
        context: AuditContext,
        files: RotatingNdjson,
        clock: Clock = utc_now,
        *,
        data_events: bool = True,
        queue_size: int = 10000,
    ) -> None:
        self._context = context
        self._data_events = data_events
        self._writer = AuditWriter(
            files,
            queue_size=queue_size,
            notice=lambda count: dropped_records_event(count, context, clock()),
            render=self._render,
        )

    @property
    def writer(self) -> AuditWriter:
        """The writer (counts of written and dropped records)."""
        return self._writer

    def observe(self, record: CallRecord) -> None:
        """Queue one call for its record (``CallObserver``; on the event loop, so only the cheap part here)."""
        category = categorize(record.surface, record.operation)
        if category.data_event and not self._data_events:
            return
        if record.response_elements is not None and not keeps_response(record, category):
            record = replace(record, response_elements=None)  # no frame or blob waits in the queue
        self._writer.submit((record, category))

    def _render(self, item: tuple[CallRecord, Category]) -> dict[str, Any]:
        """The record of one queued call (in the writer thread)."""
        record, category = item
        return build_event(record, self._context, category)

    def start(self) -> None:
        """Check the directory and start writing (server start-up)."""
        self._writer.start()

    def close(self) -> None:
        """Write what is queued and close the file (server shutdown)."""
        self._writer.close()


def from_settings(settings: Settings, clock: Clock = utc_now) -> AuditTrail | None:
    """The audit trail the settings ask for; None when ``audit_enabled`` is false."""
    if not settings.audit_enabled:
        return None
    options = AuditOptions.from_settings(settings)
    files = RotatingNdjson(
        options.directory,
        clock,
        max_bytes=options.max_bytes,
        daily=options.rotate_daily,
        keep=options.keep_files,
        fsync=options.fsync,
    )
    return AuditTrail(
        AuditContext(region=settings.region, account_id=settings.account_id),
        files,
        clock,
        data_events=options.data_events,
        queue_size=options.queue_size,
    )
