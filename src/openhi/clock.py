"""Time, injected: services take a ``Clock`` so tests can move time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Returns the current time as an aware UTC datetime."""

    def __call__(self) -> datetime: ...


def utc_now() -> datetime:
    """The system clock, in UTC."""
    return datetime.now(UTC)
