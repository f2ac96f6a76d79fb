"""The scheduler's pieces whose randomness the agent injects, so that a schedule
is exact under test: the per-target interval with its jitter, and the backoff of
a failing target."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from agent.net.backoff import Backoff


class JitteredInterval(IntervalTrigger):  # type: ignore[misc]
    """APScheduler's interval trigger, with its jitter drawn from the agent's own
    random source: APScheduler draws from the global one, which nothing can seed."""

    def __init__(self, seconds: int, jitter_s: float, rng: random.Random) -> None:
        super().__init__(seconds=seconds, timezone=UTC)
        self._jitter_s = jitter_s
        self._rng = rng

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if fire is None or not self._jitter_s:
            return fire
        return fire + timedelta(seconds=self._rng.uniform(0, self._jitter_s))


def backoff_delay(
    interval_s: int, failures: int, max_backoff_s: int, jitter_fraction: float, rng: random.Random
) -> float:
    """Seconds before a failing target is polled again: interval x 2^(failures-1), at
    most max_backoff_s, plus up to jitter_fraction of it (the agent's one policy, net.backoff)."""
    return Backoff(base_s=interval_s, cap_s=max_backoff_s, jitter=jitter_fraction).delay(failures, rng)
