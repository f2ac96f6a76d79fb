"""ResponseMeter: a total deadline and a minimum throughput after a grace, on an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from agent.ipfs.errors import SlowGateway
from agent.ipfs.meter import ResponseMeter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter(
    clock: Clock, deadline_s: float = 10.0, min_bytes_per_s: float = 100.0, grace_s: float = 2.0
) -> ResponseMeter:
    return ResponseMeter(
        "http://gw.test", clock=clock, deadline_s=deadline_s, min_bytes_per_s=min_bytes_per_s, grace_s=grace_s
    )


def test_the_grace_period_is_allowed_whatever_arrives() -> None:
    m = meter(Clock())
    assert m.time_left() == 2.0


def test_after_the_grace_the_wait_allowed_follows_the_bytes_received() -> None:
    m = meter(Clock())
    m.add(500)  # 500 bytes at 100 B/s pay for 5 s of waiting in all
    m.waited = m.body_waited = 3.0
    assert m.time_left() == pytest.approx(2.0)
    m.waited = m.body_waited = 5.0
    assert m.time_left() == pytest.approx(0.0)
    breach = m.breach()
    assert breach.too_slow and "below the minimum of 100 B/s" in str(breach)


def test_the_deadline_caps_a_fast_response_too() -> None:
    m = meter(Clock(), deadline_s=4.0)
    m.add(10_000_000)
    m.waited = 3.5
    assert m.time_left() == pytest.approx(0.5)
    m.waited = 4.0
    breach = m.breach()
    assert not breach.too_slow and "the deadline is 4 s" in str(breach)


def test_zero_disables_the_minimum_throughput() -> None:
    m = meter(Clock(), min_bytes_per_s=0)
    m.waited = 9.0
    assert m.time_left() == pytest.approx(1.0)


async def test_only_time_spent_waiting_is_counted() -> None:
    clock = Clock()
    m = meter(clock)

    async def answer_after(seconds: float) -> bytes:
        clock.now += seconds  # the gateway took this long (injected time)
        return b"x" * 50

    m.add(len(await m.wait(answer_after(1.5))))
    clock.now += 100.0  # the agent busy elsewhere between reads: not the gateway's time
    assert m.waited == pytest.approx(1.5) and m.bytes == 50


async def test_a_wait_past_the_limit_is_cut_and_named() -> None:
    clock = Clock()
    m = meter(clock, grace_s=0.05, min_bytes_per_s=1000)
    never = asyncio.Event()
    with pytest.raises(SlowGateway, match=r"http://gw\.test: sent 0 bytes"):
        await m.wait(never.wait())
    m.body_waited = 1.0
    with pytest.raises(SlowGateway, match="sent 0 bytes"):  # once over, every later wait fails at once
        await m.wait(never.wait())


async def test_the_wait_for_headers_counts_for_the_deadline_not_the_throughput() -> None:
    clock = Clock()
    m = meter(clock, deadline_s=10.0, grace_s=2.0)

    async def headers_after(seconds: float) -> str:
        clock.now += seconds  # a gateway looking for providers before it answers
        return "200 OK"

    assert await m.wait(headers_after(6.0), body=False) == "200 OK"
    assert (m.waited, m.body_waited) == (6.0, 0.0)
    assert m.time_left() == pytest.approx(2.0)  # the grace is whole; the deadline has 4 s left
    assert m.time_left(body=False) == pytest.approx(4.0)
