"""Throttling of API operations (guide 22777-22816): token buckets per account and operation.

``bucket.py`` the pure token bucket; ``limits.py`` the guide's table and the ``throttle_rates`` overrides;
``throttle.py`` the ``Throttle`` the endpoints call and the process-local bucket store; ``redis_buckets.py``
buckets shared through Redis (the only module that imports the Redis client, loaded only when
``throttle_url`` is set).
"""

from openhi.throttling.bucket import TokenBucket
from openhi.throttling.limits import DEFAULT_LIMITS, Limit, divided, effective_limits, parse_overrides
from openhi.throttling.throttle import BucketStore, LocalBuckets, Throttle, open_throttle

__all__ = [
    "DEFAULT_LIMITS",
    "BucketStore",
    "Limit",
    "LocalBuckets",
    "Throttle",
    "TokenBucket",
    "divided",
    "effective_limits",
    "open_throttle",
    "parse_overrides",
]
