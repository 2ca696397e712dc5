"""Token buckets per profile: a client over its rate gets 429 at once instead of queueing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from powerstrip.adapters.policy.model import RateLimit


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One bucket per key (a profile's name), refilled at ``rate`` per second up to ``burst``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, limit: RateLimit) -> bool:
        """Spend one token; False when there is none (the request is to be refused)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(limit.burst), now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
