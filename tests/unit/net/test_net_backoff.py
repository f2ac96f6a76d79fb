"""The one backoff policy: exponential, capped, jittered from an injected random source, Retry-After first."""

from __future__ import annotations

import random

import pytest

from agent.net.backoff import Backoff


class FixedRandom(random.Random):
    """uniform() returns the upper bound (or a fixed point), so the jitter is known exactly."""

    def __init__(self, at: float = 1.0) -> None:
        super().__init__(0)
        self.at = at
        self.draws = 0

    def uniform(self, a: float, b: float) -> float:
        self.draws += 1
        return a + (b - a) * self.at


def test_delays_double_from_the_base_up_to_the_cap() -> None:
    policy = Backoff(base_s=60, cap_s=600)
    assert [policy.delay(n, FixedRandom()) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert policy.delay(0, FixedRandom()) == 60  # no failure yet counts as the first


def test_a_very_long_failure_streak_stays_at_the_cap() -> None:
    assert Backoff(base_s=1, cap_s=3600).delay(10_000, FixedRandom()) == 3600


def test_jitter_is_only_added_by_default() -> None:
    policy = Backoff(base_s=100, cap_s=1000, jitter=0.1)
    assert policy.delay(1, FixedRandom(at=0.0)) == 100
    assert policy.delay(1, FixedRandom(at=1.0)) == pytest.approx(110)


def test_symmetric_jitter_spreads_both_ways() -> None:
    policy = Backoff(base_s=100, cap_s=1000, jitter=0.2, symmetric=True)
    assert policy.delay(1, FixedRandom(at=0.0)) == pytest.approx(80)
    assert policy.delay(1, FixedRandom(at=1.0)) == pytest.approx(120)


def test_the_same_seed_gives_the_same_schedule() -> None:
    policy = Backoff(base_s=30, cap_s=3600, jitter=0.5)
    first = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    assert first == [policy.delay(n, random.Random(7)) for n in range(1, 6)]


def test_matches_the_daemons_target_backoff_formula() -> None:
    # interval x 2^(failures-1), at most max, plus up to jitter_fraction of it (agent.runtime.schedule.backoff_delay).
    interval, cap, fraction = 300, 6 * 3600, 0.25
    policy = Backoff(base_s=interval, cap_s=cap, jitter=fraction)
    for failures in range(1, 12):
        a, b = random.Random(failures), random.Random(failures)
        expected = min(interval * 2 ** (failures - 1), cap) * (1 + b.uniform(0, fraction))
        assert policy.delay(failures, a) == expected


def test_a_retry_after_wins_capped_and_without_jitter() -> None:
    policy = Backoff(base_s=5, cap_s=120, jitter=0.5)
    rng = FixedRandom()
    assert policy.delay(3, rng, retry_after=42) == 42
    assert policy.delay(3, rng, retry_after=10_000) == 120
    assert policy.delay(3, rng, retry_after=-3) == 0
    assert rng.draws == 0


def test_every_delay_without_retry_after_draws_once_even_without_jitter() -> None:
    rng = FixedRandom()
    Backoff(base_s=1, cap_s=10).delay(2, rng)
    assert rng.draws == 1


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"base_s": -1, "cap_s": 1}, "negative"),
        ({"base_s": 1, "cap_s": 1, "factor": 0.5}, "factor"),
        ({"base_s": 1, "cap_s": 1, "jitter": 2}, "fraction"),
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Backoff(**kwargs)  # type: ignore[arg-type]
