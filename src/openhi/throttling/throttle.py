"""Throttling of API operations: one token bucket per (account, operation), ThrottlingException when empty.

Guide 22777-22816: for every operation, exceeding its throttling limit raises ThrottlingException. Here it
answers ThrottlingException (HTTP 429 on the native API, whose botocore model gives the shape status 429,
and on DICOMweb). The endpoints call :meth:`Throttle.acquire` with the operation's name once the caller is
authenticated; the limits come from ``limits.py``.

Where the buckets live is a port, :class:`BucketStore`:

- :class:`LocalBuckets` (default): in this process. With ``openhi serve --workers N`` every process gets the
  share ``limits.divided(limits, N)`` (rate / N, burst / N but at least 1), so the whole server stays close to
  the guide's limits without any shared state.
- ``redis_buckets.RedisBuckets`` (``throttle_url = "redis://..."``): one bucket per key for every process of
  every host, updated atomically by a Lua script in Redis. Redis unreachable: requests pass (fail open, logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from openhi.config import Settings
from openhi.errors import ThrottledError, ValidationError
from openhi.throttling.bucket import TokenBucket
from openhi.throttling.limits import Limit, divided, effective_limits

log = logging.getLogger(__name__)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class BucketStore(Protocol):
    """Where buckets live: take one token from ``key``'s bucket, created full with ``limit`` when new."""

    def take(self, key: str, limit: Limit) -> bool:
        """True when a token was taken; False when the bucket is empty."""
        ...

    def close(self) -> None:
        """Release connections (nothing for process-local buckets)."""
        ...


class LocalBuckets:
    """Buckets in this process's memory (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._guard = threading.Lock()

    def take(self, key: str, limit: Limit) -> bool:
        with self._guard:
            bucket = self._buckets.get(key)
            if bucket is None or (bucket.rate, bucket.burst) != (limit.rate, limit.burst):
                bucket = self._buckets[key] = TokenBucket(limit.rate, limit.burst, self._clock)
            return bucket.try_take()

    def close(self) -> None:
        """Nothing to release."""


class Throttle:
    """Per-operation limits over a bucket store, for one account."""

    def __init__(self, limits: Mapping[str, Limit], store: BucketStore, account_id: str, description: str = "") -> None:
        self._limits = dict(limits)
        self._store = store
        self._account_id = account_id
        self.description = description or f"{len(self._limits)} operations throttled"

    @classmethod
    def off(cls) -> Throttle:
        """A throttle that never refuses (``throttling = false``)."""
        return cls({}, LocalBuckets(), "", "off")

    @property
    def enabled(self) -> bool:
        """True when at least one operation is throttled."""
        return bool(self._limits)

    def limit(self, operation: str) -> Limit | None:
        """The limit applied to ``operation`` in this process (None: not throttled)."""
        return self._limits.get(operation)

    def acquire(self, operation: str) -> None:
        """Take one token for ``operation``; ThrottledError (ThrottlingException) when its bucket is empty."""
        limit = self._limits.get(operation)
        if limit is None:
            return
        if not self._store.take(f"{self._account_id}:{operation}", limit):
            raise ThrottledError(f"Rate exceeded for {operation}")

    def close(self) -> None:
        """Release the bucket store."""
        self._store.close()


def open_throttle(settings: Settings, known_operations: Collection[str] | None = None) -> Throttle:
    """The throttle ``settings`` describe (``throttling``, ``throttle_rates``, ``throttle_url``, ``workers``).

    The overrides and the URL are checked even when throttling is off, so a typo fails at start either way.
    """
    limits = effective_limits(settings.throttle_rates, known_operations)
    url = settings.throttle_url
    if url and not url.startswith(REDIS_SCHEMES):
        raise ValidationError(
            f"setting 'throttle_url' must be a redis://, rediss:// or unix:// URL, not {url!r}", field="throttle_url"
        )
    if not settings.throttling:
        return Throttle.off()
    if url:
        from openhi.throttling.redis_buckets import RedisBuckets

        shown = url.split("@")[-1]
        return Throttle(limits, RedisBuckets.open(url), settings.account_id, f"shared through Redis at {shown}")
    if settings.workers > 1:
        share = f"process-local, each of {settings.workers} processes with 1/{settings.workers} of every limit"
        return Throttle(divided(limits, settings.workers), LocalBuckets(), settings.account_id, share)
    return Throttle(limits, LocalBuckets(), settings.account_id, "process-local")
