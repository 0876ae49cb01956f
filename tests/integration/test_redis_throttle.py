"""Buckets shared through Redis (``throttle_url``): two Throttles — two processes or hosts — share one limit.

Needs the Redis server at ``OPENHI_TEST_REDIS`` (default ``redis://127.0.0.1:6379/15``); skips when absent,
fails instead under ``OPENHI_REQUIRE_BACKENDS=1`` (CI). Every test uses its own key prefix and removes it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from tests.support.backends import free_port, unavailable

from openhi.errors import ThrottledError
from openhi.throttling.limits import Limit
from openhi.throttling.redis_buckets import RedisBuckets
from openhi.throttling.throttle import Throttle

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("OPENHI_TEST_REDIS", "redis://127.0.0.1:6379/15")
ACCOUNT = "123456789012"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test alone, deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    name = f"openhi-test:{uuid.uuid4().hex[:12]}:"
    yield name
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)
    client.close()


def _throttle(prefix: str, limits: dict[str, Limit]) -> Throttle:
    return Throttle(limits, RedisBuckets.open(REDIS_URL, prefix=prefix), ACCOUNT, "shared")


def _outcomes(throttle: Throttle, operation: str, count: int) -> list[bool]:
    results = []
    for _ in range(count):
        try:
            throttle.acquire(operation)
            results.append(True)
        except ThrottledError:
            results.append(False)
    return results


def test_two_throttles_share_one_bucket(prefix: str) -> None:
    limits = {"GetDatastore": Limit(0.5, 3)}
    first, second = _throttle(prefix, limits), _throttle(prefix, limits)
    try:
        assert _outcomes(first, "GetDatastore", 2) == [True, True]
        assert _outcomes(second, "GetDatastore", 2) == [True, False]  # one token was left for both
        assert _outcomes(first, "GetDatastore", 1) == [False]
        assert _outcomes(second, "ListDatastores", 5) == [True] * 5  # not limited
    finally:
        first.close()
        second.close()


def test_the_shared_bucket_refills_at_the_rate(prefix: str) -> None:
    limits = {"GetImageFrame": Limit(20, 2)}
    first, second = _throttle(prefix, limits), _throttle(prefix, limits)
    try:
        assert _outcomes(first, "GetImageFrame", 3) == [True, True, False]
        time.sleep(0.12)  # 2.4 tokens at 20/s, capped at the burst of 2
        assert _outcomes(second, "GetImageFrame", 3) == [True, True, False]
    finally:
        first.close()
        second.close()


def test_concurrent_takers_never_exceed_the_burst(prefix: str) -> None:
    """The Lua script is atomic: 8 threads x 2 clients racing for 10 tokens get exactly 10 (rate negligible)."""
    limits = {"CopyImageSet": Limit(0.001, 10)}
    throttles = [_throttle(prefix, limits) for _ in range(2)]
    granted: list[bool] = []
    lock = threading.Lock()

    def hammer(throttle: Throttle) -> None:
        outcomes = _outcomes(throttle, "CopyImageSet", 5)
        with lock:
            granted.extend(outcomes)

    threads = [threading.Thread(target=hammer, args=(throttles[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for throttle in throttles:
        throttle.close()
    assert granted.count(True) == 10
    assert granted.count(False) == 30


def test_buckets_are_per_account_and_expire_when_full_again(prefix: str) -> None:
    limits = {"TagResource": Limit(10, 1)}
    buckets = RedisBuckets.open(REDIS_URL, prefix=prefix)
    try:
        one, other = Throttle(limits, buckets, "111111111111"), Throttle(limits, buckets, "222222222222")
        one.acquire("TagResource")
        other.acquire("TagResource")
        with pytest.raises(ThrottledError, match="Rate exceeded for TagResource"):
            one.acquire("TagResource")
        client = redis.Redis.from_url(REDIS_URL)
        ttl = client.pttl(f"{prefix}111111111111:TagResource")
        assert 0 < ttl <= 1100 + 100  # refilled within 0.1 s, plus one second of slack
        client.close()
    finally:
        buckets.close()


def test_an_unreachable_redis_fails_open_and_is_not_retried_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """Fail open: a limiter outage must not become an archive outage; one warning per retry period."""
    buckets = RedisBuckets.open(f"redis://127.0.0.1:{free_port()}/0", retry_seconds=60)
    throttle = Throttle({"CreateDatastore": Limit(0.085, 1)}, buckets, ACCOUNT)
    with caplog.at_level(logging.WARNING, logger="openhi.throttling.redis_buckets"):
        started = time.monotonic()
        for _ in range(20):
            throttle.acquire("CreateDatastore")  # far beyond the burst of 1: every call passes
        elapsed = time.monotonic() - started
    throttle.close()
    warnings = [r for r in caplog.records if "throttle store unreachable" in r.getMessage()]
    assert len(warnings) == 1  # the first failure; the next 19 calls did not try Redis
    assert elapsed < 1.0
