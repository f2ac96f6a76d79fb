"""A lying gateway found by one node's scan is not asked for blocks by another node's scan
sharing the store, until its distrust ends (issue 13): real gateways on 127.0.0.1, both dialects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from agent.config import GatewaySettings, Settings
from agent.ipfs.cid import parse_cid
from agent.model.report import ItemStatus, ScanReport
from agent.model.time import utcnow
from agent.pipeline import Scanner
from agent.pipeline.gateway_trust import GatewayTrust
from agent.store import Store
from tests.conftest import IPFS_FIXTURES
from tests.support.gateway import FixtureGateway

DIR_WITH_FILES = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"
HELLO = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")  # hello.txt = "hello world\n"
DAY = 86400.0
GUARD_S = 60  # a scan that does not end fails the test instead of hanging the suite
MakeGateway = Callable[..., Awaitable[FixtureGateway]]


async def _liar_and_honest(make_gateway: MakeGateway) -> tuple[FixtureGateway, FixtureGateway]:
    liar = await make_gateway(DIR_WITH_FILES)
    liar.lie_about.update(liar.blocks)  # wrong bytes for every block it is asked for
    honest = await make_gateway(DIR_WITH_FILES)
    return liar, honest


async def _scan(
    store: Store, node: str, distrust_s: float, liar: FixtureGateway, honest: FixtureGateway, now: datetime
) -> ScanReport:
    settings = Settings(gateways=GatewaySettings(distrust_liar_s=distrust_s))
    trust = GatewayTrust(store, node, distrust_s, clock=lambda: now)
    # The liar first: a scan that does not shun it asks it before the honest one.
    scanner = Scanner(settings, gateways=[liar.url, honest.url], hash_media=False, concurrency=1, trust=trust)
    async with asyncio.timeout(GUARD_S):
        report = await scanner.scan(f"ipfs://{HELLO}")
    assert [item.status for item in report.items] == [ItemStatus.VERIFIED], report.errors
    return report


def _entry(report: ScanReport, gw: FixtureGateway) -> dict[str, object]:
    return next(g for g in report.gateways if g["url"] == gw.url)


async def test_a_liar_node_a_caught_is_not_asked_by_node_b_and_its_report_says_why(
    store: Store, make_gateway: MakeGateway
) -> None:
    liar, honest = await _liar_and_honest(make_gateway)
    now = utcnow()
    first = await _scan(store, "a", DAY, liar, honest, now)
    assert _entry(first, liar)["lied"] == 1 and _entry(first, liar)["distrusted"] is None
    (mark,) = await store.gateways.distrusted(now)
    assert (mark.url, mark.node, mark.cid) == (liar.url, "a", str(HELLO))

    asked_before = sum(liar.requests.values())
    second = await _scan(store, "b", DAY, liar, honest, now + timedelta(hours=1))
    assert sum(liar.requests.values()) == asked_before, "node b must not ask a gateway node a caught lying"
    entry = _entry(second, liar)
    assert entry["trusted"] is False and entry["lied"] == 0
    note = str(entry["distrusted"])
    assert note.startswith(f"distrusted until {mark.until.isoformat()}")
    assert f"served a wrong block of {HELLO}, seen by node a" in note
    assert _entry(second, honest)["served"] == 1


async def test_after_its_distrust_ends_the_gateway_is_asked_again(store: Store, make_gateway: MakeGateway) -> None:
    liar, honest = await _liar_and_honest(make_gateway)
    now = utcnow()
    await _scan(store, "a", DAY, liar, honest, now)
    asked_before = sum(liar.requests.values())
    later = await _scan(store, "b", DAY, liar, honest, now + timedelta(seconds=DAY + 1))
    assert sum(liar.requests.values()) > asked_before
    assert _entry(later, liar)["distrusted"] is None and _entry(later, liar)["lied"] == 1
    # Caught again: distrusted anew, from node b's mark, until a day after that scan.
    (mark,) = await store.gateways.distrusted(now + timedelta(seconds=DAY + 1))
    assert mark.node == "b" and mark.until == now + timedelta(seconds=2 * DAY + 1)


async def test_distrust_liar_s_zero_shares_nothing(store: Store, make_gateway: MakeGateway) -> None:
    liar, honest = await _liar_and_honest(make_gateway)
    now = utcnow()
    first = await _scan(store, "a", 0, liar, honest, now)
    assert _entry(first, liar)["lied"] == 1
    assert await store.gateways.distrusted(now) == []
    asked_before = sum(liar.requests.values())
    second = await _scan(store, "b", 0, liar, honest, now)
    assert sum(liar.requests.values()) > asked_before and _entry(second, liar)["lied"] == 1


async def test_a_later_mark_extends_distrust_and_never_shortens_it(store: Store) -> None:
    now = utcnow()
    await store.gateways.mark("http://127.0.0.1:1", "served a wrong block of x", "x", "a", now + timedelta(hours=2))
    await store.gateways.mark("http://127.0.0.1:1", "served a wrong block of y", "y", "b", now + timedelta(hours=1))
    (mark,) = await store.gateways.distrusted(now)
    assert (mark.until, mark.node, mark.cid) == (now + timedelta(hours=2), "b", "y")
    await store.gateways.mark("http://127.0.0.1:1", "served a wrong block of z", "z", "c", now + timedelta(hours=3))
    assert await store.gateways.distrusted(now + timedelta(hours=2, minutes=30)) != []
    assert await store.gateways.distrusted(now + timedelta(hours=3)) == []
