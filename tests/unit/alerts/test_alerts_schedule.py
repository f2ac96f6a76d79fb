"""The delivery retry schedule: the documented table, jittered both ways, exhausted
after its last step, and a server's Retry-After capped at the longest step."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from agent.alerts.schedule import DEFAULT_SCHEDULE, RetrySchedule


def test_the_default_schedule_is_eight_attempts_over_about_28_hours() -> None:
    schedule = RetrySchedule()
    assert schedule.attempts == 8 and schedule.steps[0] == timedelta(0)
    assert timedelta(hours=27) < sum(DEFAULT_SCHEDULE, timedelta()) < timedelta(hours=29)


def test_each_wait_is_its_step_jittered_within_the_fraction() -> None:
    schedule = RetrySchedule(jitter=0.2)
    rng = random.Random(7)
    for attempt in range(1, schedule.attempts):
        wait = schedule.wait_after(attempt, rng)
        step = DEFAULT_SCHEDULE[attempt]
        assert wait is not None and step * 0.8 <= wait <= step * 1.2


def test_jitter_draws_the_same_numbers_as_before_the_backoff_policy() -> None:
    # Seeded tests of the worker rely on one uniform(-j, j) draw per retry, scaling the step.
    schedule = RetrySchedule(jitter=0.2)
    ours, theirs = random.Random(3), random.Random(3)
    for attempt in (1, 2, 3):
        expected = DEFAULT_SCHEDULE[attempt] * (1.0 + theirs.uniform(-0.2, 0.2))
        wait = schedule.wait_after(attempt, ours)
        assert wait is not None and abs(wait - expected) <= timedelta(microseconds=1)


def test_without_jitter_the_wait_is_the_step() -> None:
    schedule = RetrySchedule((timedelta(0), timedelta(seconds=5), timedelta(minutes=1)), jitter=0.0)
    assert schedule.wait_after(1, random.Random()) == timedelta(seconds=5)
    assert schedule.wait_after(2, random.Random()) == timedelta(minutes=1)


def test_the_schedule_is_exhausted_after_its_last_step() -> None:
    schedule = RetrySchedule((timedelta(0), timedelta(seconds=5)), jitter=0.0)
    assert schedule.wait_after(2, random.Random()) is None
    assert schedule.wait_after(2, random.Random(), retry_after_s=1.0) is None


def test_retry_after_wins_unjittered_and_is_capped_at_the_longest_step() -> None:
    schedule = RetrySchedule(jitter=0.2)
    assert schedule.wait_after(1, random.Random(), retry_after_s=42.0) == timedelta(seconds=42)
    assert schedule.wait_after(1, random.Random(), retry_after_s=10**9) == max(DEFAULT_SCHEDULE)


@pytest.mark.parametrize(
    ("steps", "jitter", "error"),
    [((), 0.2, "at least one step"), ((timedelta(0),), 1.0, "jitter"), ((timedelta(0),), -0.1, "jitter")],
)
def test_a_schedule_without_steps_or_with_a_bad_jitter_is_refused(
    steps: tuple[timedelta, ...], jitter: float, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        RetrySchedule(steps, jitter)
