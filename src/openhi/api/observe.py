"""What each API call did, told to observers (audit trail, metrics) once the answer is known.

Both edges (native API, DICOMweb) fill a ``CallFacts`` while they serve a request and hand the finished
``CallRecord`` to every registered ``CallObserver``. The record carries only facts, never bodies: observers
decide what they keep (the audit trail drops bytes and secrets, metrics keep counts and latencies). An observer
that fails is logged and never changes the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from starlette.requests import Request

from openhi.iam.principals import Caller

log = logging.getLogger(__name__)

Surface = Literal["native", "dicomweb", "sts"]


@dataclass(frozen=True)
class CallRecord:
    """One served request."""

    request_id: str
    surface: Surface
    operation: str | None  # None when no operation was matched (unknown route)
    datastore_id: str | None
    caller: Caller | None  # None when authentication failed
    source_ip: str
    user_agent: str
    started_at: datetime
    duration_seconds: float
    status: int
    error_code: str | None
    error_message: str | None
    request_parameters: Mapping[str, Any]
    response_elements: Mapping[str, Any] | None


class CallObserver(Protocol):
    """Told about every call after it was answered (called on the event loop: keep it quick)."""

    def observe(self, record: CallRecord) -> None:
        """Take note of one call."""
        ...


@dataclass
class CallFacts:
    """Filled in by an edge while it serves one request."""

    request: Request
    request_id: str
    surface: Surface
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    operation: str | None = None
    datastore_id: str | None = None
    caller: Caller | None = None
    request_parameters: Mapping[str, Any] = field(default_factory=dict)
    response_elements: Mapping[str, Any] | None = None
    error_message: str | None = None  # set by an edge that answers the error itself

    def record(self, status: int, error_code: str | None = None, error_message: str | None = None) -> CallRecord:
        """The finished record."""
        client = self.request.client
        return CallRecord(
            request_id=self.request_id,
            surface=self.surface,
            operation=self.operation,
            datastore_id=self.datastore_id,
            caller=self.caller,
            source_ip=client.host if client else "",
            user_agent=self.request.headers.get("user-agent", ""),
            started_at=self.started_at,
            duration_seconds=time.perf_counter() - self.started,
            status=status,
            error_code=error_code,
            error_message=error_message or self.error_message,
            request_parameters=self.request_parameters,
            response_elements=self.response_elements,
        )


def notify(observers: Sequence[CallObserver], record: CallRecord) -> None:
    """Tell every observer; a failing one is logged and skipped."""
    for observer in observers:
        try:
            observer.observe(record)
        except Exception:
            log.exception("call observer %r failed for request %s", observer, record.request_id)
