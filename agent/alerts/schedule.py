"""When a failed webhook delivery is tried again.

The schedule is a table rather than a formula because its total is a promise:
8 attempts over ~28 h, so a platform that is down for a day still gets every
alert without anyone replaying. Each step is jittered both ways (deliveries that
failed together, during one outage, do not all come back in the same second) and
a server's Retry-After wins, capped at the longest step. Both rules are the
agent's one backoff policy (agent.net.backoff), applied to one step at a time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from agent.net.backoff import Backoff

# steps[0] is the delay of the first attempt (immediate); attempt n+1 is due
# steps[n] after attempt n failed.
DEFAULT_SCHEDULE: Final[tuple[timedelta, ...]] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    steps: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("schedule needs at least one step")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")

    @property
    def attempts(self) -> int:
        """How many attempts a delivery gets before it is marked failed."""
        return len(self.steps)

    @property
    def longest(self) -> timedelta:
        return max(self.steps)

    def wait_after(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> timedelta | None:
        """How long after failed attempt number `attempt` (1-based) the next one is due;
        None once the schedule is exhausted. `retry_after_s` is the server's Retry-After."""
        if attempt >= len(self.steps):
            return None
        policy = Backoff(
            base_s=self.steps[attempt].total_seconds(),
            cap_s=self.longest.total_seconds(),
            jitter=self.jitter,
            symmetric=True,
        )
        return timedelta(seconds=policy.delay(1, rng, retry_after=retry_after_s))
