"""The agent's one backoff policy: exponential, capped, jittered, Retry-After first.

Used wherever the agent waits before asking again: a failing target's next
poll, a webhook retry, a rate-limited gateway or TCAP page. The random source
is injected, so schedules are reproducible in tests.

Why not stamina or tenacity (both installable): they drive retry *loops* in
one process, and most of the agent's retries are not loops. A failing
target's next poll and a webhook's next attempt are rows in the database
(`next_run`, `next_attempt_at`), so they survive a restart and are shared by
several agents; what the agent needs is only the number of seconds to store.
The two in-process retries (a rate-limited gateway, a TCAP page) make at most
a few attempts and must stop early on a Retry-After longer than they may wait,
which is a condition on the server's answer, not on the attempt count; a
library's decorator would hide that rule rather than express it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """base_s x factor^(failures-1), at most cap_s, then jittered.

    jitter: a fraction of the delay. By default it is only added (the delay is
        never shorter than the exponential: a target backing off must not be
        polled early); `symmetric=True` spreads it both ways (±jitter), which
        scatters a herd of retries that failed together.
    A Retry-After from the server wins over the exponential: it is capped at
    cap_s (a hostile or confused server must not park the agent for a year)
    and not jittered (the server named the moment it wants)."""

    base_s: float
    cap_s: float
    factor: float = 2.0
    jitter: float = 0.0
    symmetric: bool = False

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("backoff delays cannot be negative")
        if self.factor < 1:
            raise ValueError("a backoff factor below 1 would shrink the delays")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction of the delay, between 0 and 1")

    def exponential(self, failures: int) -> float:
        """The delay after `failures` consecutive failures, before jitter (failures <= 1: base_s)."""
        exponent = max(0, failures - 1)
        # Stop multiplying once past the cap: factor**exponent overflows a float for long streaks.
        delay = self.base_s
        for _ in range(exponent):
            if delay >= self.cap_s:
                break
            delay *= self.factor
        return float(min(delay, self.cap_s))

    def delay(self, failures: int, rng: random.Random, *, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt."""
        if retry_after is not None:
            return float(min(max(0.0, retry_after), self.cap_s))
        delay = self.exponential(failures)
        # Always one draw, even with no jitter: the random stream then does not
        # depend on the configuration (a seeded test sees the same sequence).
        low = -self.jitter if self.symmetric else 0.0
        return float(delay * (1 + rng.uniform(low, self.jitter)))
