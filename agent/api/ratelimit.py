"""Per-token rate limits: a token bucket per API token ([api] rate_limit_per_s, refilled
continuously, holding at most rate_limit_burst), on an injectable monotonic clock.

Keyed by token id, so one caller's burst never slows another's; requests without a valid
token are refused before they reach a bucket (401)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from agent.api.problems import Problem

# Buckets full again (idle longer than burst / rate) are dropped once this many are held.
_SWEEP_AT = 4096


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, token_id: Hashable) -> float | None:
        """Spend one request of `token_id`'s bucket: None when allowed, otherwise the seconds
        until one is available again."""
        now = self._clock()
        bucket = self._buckets.get(token_id)
        if bucket is None:
            if len(self._buckets) >= _SWEEP_AT:
                self._sweep(now)
            bucket = self._buckets[token_id] = _Bucket(self._burst, now)
        else:
            # A clock that went backwards (an injected one) refills nothing rather than draining.
            bucket.tokens = min(self._burst, bucket.tokens + max(0.0, now - bucket.at) * self._rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate

    def refund(self, key: Hashable) -> None:
        """Give one request back to `key`'s bucket (the console's login: only failures count)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self._burst, bucket.tokens + 1.0)

    def check(self, token_id: Hashable) -> None:
        """take(), refused as a 429 problem with Retry-After in whole seconds (at least 1)."""
        wait = self.take(token_id)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise Problem(
                429, f"too many requests for this token; retry in {seconds} s", headers={"Retry-After": str(seconds)}
            )

    def _sweep(self, now: float) -> None:
        full_after = self._burst / self._rate
        for key in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[key]
