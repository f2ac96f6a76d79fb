"""The agent's schedule comes from an injected clock and random source: next runs,
backoff after a failure and the per-target jitter are exact under test, whatever
the machine's load."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import ScheduleSettings
from agent.runtime.agent import Agent
from agent.runtime.schedule import JitteredInterval, backoff_delay
from tests.support.agent import settings_for
from tests.support.unixfs_builder import UnixFSBuilder

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def _close(a: datetime | None, b: datetime) -> bool:
    assert a is not None
    return abs((a.replace(tzinfo=a.tzinfo or UTC) - b).total_seconds()) < 1e-3


def test_the_interval_trigger_draws_its_jitter_from_the_given_random_source() -> None:
    def fire_times(seed: int) -> list[datetime]:
        trigger = JitteredInterval(600, 60, random.Random(seed))
        times: list[datetime] = []
        previous: datetime | None = T0
        for _ in range(20):
            nxt = trigger.get_next_fire_time(previous, T0)
            assert nxt is not None
            times.append(nxt)
            previous = nxt
        return times

    times = fire_times(7)
    assert times == fire_times(7), "the same seed gives the same schedule"
    steps = [(b - a).total_seconds() for a, b in zip([T0, *times], times, strict=False)]
    assert all(600 <= s <= 660 for s in steps), steps
    assert len({round(s, 3) for s in steps}) > 1, "jittered, not fixed"
    unjittered = JitteredInterval(600, 0, random.Random(7)).get_next_fire_time(T0, T0)
    assert unjittered == T0 + timedelta(seconds=600)


def test_backoff_doubles_per_failure_up_to_the_cap_plus_jitter() -> None:
    rng = random.Random(1)
    assert backoff_delay(60, 1, 3600, 0, rng) == 60
    assert backoff_delay(60, 3, 3600, 0, rng) == 240
    assert backoff_delay(60, 10, 3600, 0, rng) == 3600
    delays = [backoff_delay(60, 2, 3600, 0.1, rng) for _ in range(50)]
    assert all(120 <= d <= 132 for d in delays) and len(set(delays)) > 1


async def test_next_runs_come_from_the_agents_clock_and_random_source(tmp_path: Path) -> None:
    plain = settings_for(tmp_path, "http://127.0.0.1:9")  # nothing listens: no fetch can succeed
    settings = plain.model_copy(update={"schedule": ScheduleSettings(jitter_fraction=0.1, max_backoff_s=7200)})
    name, _ = UnixFSBuilder().add_file(b"not an IPNS key: the poll fails before any fetch")
    async with Agent(settings, clock=lambda: T0, rng=random.Random(5)) as agent:
        failing = await agent.add_target(f"ipns://{name}", 600)
        result = await agent.poll_target(failing.id, scheduled=False)
        assert not result.ok
        expected = T0 + timedelta(seconds=backoff_delay(600, 1, 7200, 0.1, random.Random(5)))
        row = await agent.store.targets.get(failing.id)
        assert row is not None and _close(row.next_run_at, expected)
        await agent.poll_target(failing.id, scheduled=False)  # the second failure waits twice as long
        second = random.Random(5)
        backoff_delay(600, 1, 7200, 0.1, second)
        row = await agent.store.targets.get(failing.id)
        assert row is not None and _close(
            row.next_run_at, T0 + timedelta(seconds=backoff_delay(600, 2, 7200, 0.1, second))
        )
