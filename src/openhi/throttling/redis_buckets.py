"""Token buckets shared by every server process and host, in Redis (``throttle_url = "redis://host:6379/0"``).

One Redis hash per bucket (``openhi:throttle:{account}:{operation}``: ``tokens``, ``ts`` in microseconds), read,
refilled, taken from and written back by one Lua script, which Redis runs atomically: two processes can never
both take the last token. Time is Redis's own ``TIME``, so hosts with skewed clocks share one timeline. Idle
buckets expire once they would be full again (Redis 7 replicates a script's effects, so ``TIME`` in a script
is allowed).

Redis unreachable or failing: the request passes (**fail open**) and a warning is logged; Redis is not tried
again for ``retry_seconds``, so an outage costs one connection timeout per period, not one per request.
Throttling protects the archive from overload; refusing every request because the limiter is down would turn
a limiter outage into a full outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from openhi.errors import ValidationError
from openhi.throttling.limits import Limit

log = logging.getLogger(__name__)

PREFIX = "openhi:throttle:"

# KEYS[1] the bucket; ARGV rate (tokens/s), burst, tokens to take. Returns 1 (taken) or 0 (refused).
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
local elapsed = math.max(0, now - last) / 1000000
tokens = math.min(burst, tokens + elapsed * rate)
local taken = 0
if tokens >= wanted then
  tokens = tokens - wanted
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return taken
"""


class RedisBuckets:
    """A :class:`~openhi.throttling.throttle.BucketStore` in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = PREFIX,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._script = client.register_script(TAKE_SCRIPT)
        self._prefix = prefix
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._skip_until = float("-inf")
        self._guard = threading.Lock()

    @classmethod
    def open(
        cls, url: str, *, timeout_seconds: float = 0.25, retry_seconds: float = 5.0, prefix: str = PREFIX
    ) -> RedisBuckets:
        """A store over the Redis server at ``url`` (nothing is sent until the first request)."""
        try:
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                retry=Retry(NoBackoff(), 0),  # one attempt: a slow or absent Redis must not hold requests
            )
        except ValueError as exc:
            raise ValidationError(f"setting 'throttle_url': {exc}", field="throttle_url") from exc
        return cls(client, prefix=prefix, retry_seconds=retry_seconds)

    def take(self, key: str, limit: Limit) -> bool:
        """One token from the shared bucket; True without asking Redis while it is considered down."""
        now = self._clock()
        if now < self._skip_until:
            return True
        try:
            taken = self._script(keys=[self._prefix + key], args=[repr(limit.rate), repr(limit.burst), 1])
        except redis.RedisError as exc:
            with self._guard:
                self._skip_until = now + self._retry_seconds
            log.warning(
                "throttle store unreachable (%s): requests pass unthrottled; trying Redis again in %.0f s",
                exc,
                self._retry_seconds,
            )
            return True
        return bool(taken)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
