"""Gateway health that outlives one scan.

A GatewayPool lives for one scan; without memory, every scan asks a gateway
that lied an hour ago, or one that is rate limiting us, first again. A
GatewayHealthBook is held by whoever runs many scans (the daemon) and handed
to each pool: the pool starts from what the book remembers (score, cooldown,
distrust) and writes back every change.

What carries over is only what decides *order and exclusion*: the per-scan
counters of the report (served, failures, bytes) start at zero in every scan.
A gateway that lied or flooded a stream is distrusted for `distrust_s`: later
pools rank it last (as if cooling down) but do not exclude it, because every
block is verified anyway (a liar costs bandwidth, never a wrong result) and a
pool whose only gateway is distrusted must still be able to ask it. After
`distrust_s` it is ranked on its score again: it may have been fixed. The book
is in memory: a restart forgets it, which only costs relearning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["GatewayHealthBook", "HealthRecord", "RememberedHealth"]


class RememberedHealth(Protocol):
    """The part of a pool's GatewayHealth the book reads and seeds (agent.ipfs.gateway.GatewayHealth)."""

    url: str
    score: float
    cooldown_until: float
    bad: bool
    last_error: str | None


@dataclass
class HealthRecord:
    score: float = 1.0
    cooldown_until: float = 0.0  # same clock as the pool's (time.monotonic)
    distrusted_until: float = 0.0
    reason: str | None = None  # why it is distrusted


class GatewayHealthBook:
    def __init__(self, *, distrust_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` must be the pools' clock (time.monotonic): cooldowns are compared with it."""
        self._distrust_s = distrust_s
        self._clock = clock
        self._records: dict[str, HealthRecord] = {}

    def get(self, url: str) -> HealthRecord | None:
        return self._records.get(url)

    def seed(self, health: RememberedHealth) -> None:
        """Start a new pool's entry for `health.url` from what earlier scans left."""
        record = self._records.get(health.url)
        if record is None:
            return
        health.score = record.score
        health.cooldown_until = max(health.cooldown_until, record.cooldown_until)
        if record.distrusted_until > self._clock():
            # Ranked last, not marked `bad`: the report's `trusted` says what *this* scan saw.
            health.score = 0.0
            health.cooldown_until = max(health.cooldown_until, record.distrusted_until)

    def remember(self, health: RememberedHealth) -> None:
        """Record a pool entry's current state (called by the pool after each change)."""
        record = self._records.setdefault(health.url, HealthRecord())
        record.score = health.score
        record.cooldown_until = health.cooldown_until
        if health.bad:
            record.distrusted_until = self._clock() + self._distrust_s
            record.reason = health.last_error
