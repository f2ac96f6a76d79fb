"""Gateway health that outlives one scan: a GatewayHealthBook carries ranking and distrust from pool to pool."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from agent.ipfs.errors import RateLimited
from agent.ipfs.gateway import GatewayPool
from agent.ipfs.health import GatewayHealthBook
from agent.ipfs.trustless import TrustlessGateway

A, B = "http://gw-a.test", "http://gw-b.test"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:  # never used to connect: nothing is fetched
        yield session


def pool(http: aiohttp.ClientSession, book: GatewayHealthBook | None) -> GatewayPool:
    return GatewayPool([TrustlessGateway(A, http), TrustlessGateway(B, http)], book=book)


def order(p: GatewayPool) -> list[str]:
    return [gw.url for gw in p.ranked()]


async def test_a_gateway_that_lied_is_asked_last_by_the_next_scans_pool(http: aiohttp.ClientSession) -> None:
    book = GatewayHealthBook()
    first = pool(http, book)
    first.mark_liar(A, "bafy-lie")
    second = pool(http, book)
    assert order(second) == [B, A]
    # Ranked last, not excluded, and this scan's report does not call it untrusted.
    report = {row["url"]: row for row in second.report()}
    assert report[A]["trusted"] is True and report[A]["excluded"] is False and report[A]["lied"] == 0


async def test_distrust_ends_after_its_time(http: aiohttp.ClientSession) -> None:
    book = GatewayHealthBook(distrust_s=0.0)
    pool(http, book).mark_liar(A, "bafy-lie")
    later = pool(http, book)
    assert later.health[A].cooldown_until <= time.monotonic()


async def test_a_rate_limit_cooldown_carries_into_the_next_pool(http: aiohttp.ClientSession) -> None:
    book = GatewayHealthBook()
    first = pool(http, book)
    first.failure(first.gateways[0], RateLimited(A, 120.0))
    second = pool(http, book)
    assert second.health[A].cooldown_until > time.monotonic() + 60
    assert order(second) == [B, A]


async def test_the_reports_counters_start_at_zero_in_every_scan(http: aiohttp.ClientSession) -> None:
    book = GatewayHealthBook()
    first = pool(http, book)
    first.failure(first.gateways[1], RateLimited(B, 1.0))
    row = next(r for r in pool(http, book).report() if r["url"] == B)
    assert row["failures"] == 0 and row["served"] == 0 and row["last_error"] is None


async def test_without_a_book_each_pool_starts_fresh(http: aiohttp.ClientSession) -> None:
    first = pool(http, None)
    first.mark_liar(A, "bafy-lie")
    assert order(first) == [B]  # excluded within its own scan
    assert order(pool(http, None)) == [A, B]
