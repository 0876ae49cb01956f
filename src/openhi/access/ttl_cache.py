"""A small time-to-live cache by the injected clock: what the principal directory keeps resolved keys and roles in.

Bounded: past ``limit`` entries the stale ones are dropped, and if that is not enough, all of them (a burst of
unknown access key ids must not grow memory without end). Thread-safe; a TTL of zero or less disables it.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Final

from openhi.clock import Clock

DEFAULT_LIMIT: Final = 10_000


class TtlCache[V]:
    """A map whose entries live ``seconds`` by ``clock``."""

    def __init__(self, clock: Clock, seconds: float, limit: int = DEFAULT_LIMIT) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=seconds)
        self._limit = limit
        self._entries: dict[str, tuple[datetime, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, V | None]:
        """(True, value) while the entry is fresh, else (False, None)."""
        with self._lock:
            found = self._entries.get(key)
        if found is None or found[0] <= self._clock():
            return False, None
        return True, found[1]

    def put(self, key: str, value: V) -> None:
        """Keep ``value`` for the TTL."""
        if self._ttl <= timedelta(0):
            return
        now = self._clock()
        with self._lock:
            if len(self._entries) >= self._limit:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._limit:
                    self._entries.clear()
            self._entries[key] = (now + self._ttl, value)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
