"""A token bucket: a steady rate with a burst allowance (guide 22777-22816, "限制率" and "节流突增").

The guide gives every throttled operation a rate (tokens per second) and a burst (the bucket's capacity). A
full bucket holds ``burst`` tokens; each request takes one; tokens come back continuously at ``rate`` per
second, never above ``burst``. A request that finds fewer tokens than it needs takes none and is refused. Pure:
the monotonic clock is injected, so tests drive time by hand. Not thread-safe on its own; the caller serializes.
"""

from __future__ import annotations

from collections.abc import Callable

from openhi.errors import ValidationError

EPSILON = 1e-9
"""Rounding slack: a token that is due now (elapsed * rate == 1 up to float error) is available."""


class TokenBucket:
    """One bucket, starting full."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if not rate > 0 or not burst > 0:
            raise ValidationError(f"a token bucket needs rate > 0 and burst > 0 (got {rate}, {burst})")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock that steps back never drains the bucket
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if the bucket holds them (True); otherwise take nothing (False)."""
        self._refill()
        if self._tokens >= n - EPSILON:
            self._tokens = max(0.0, self._tokens - n)
            return True
        return False

    def seconds_until(self, n: float = 1.0) -> float:
        """How long until ``n`` tokens are available (0 when they are now; infinite when ``n`` > burst)."""
        self._refill()
        if self._tokens >= n - EPSILON:
            return 0.0
        if n > self.burst:
            return float("inf")
        return (n - self._tokens) / self.rate
