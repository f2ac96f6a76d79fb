"""Verified retrieval against real aiohttp gateways on 127.0.0.1: honest, lying, blocking, slow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from agent.ipfs.blocks import Provenance
from agent.ipfs.cid import parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.errors import BlockedContent, MissingBlock
from agent.ipfs.gateway import GatewayPool
from agent.ipfs.trustless import TrustlessGateway
from tests.conftest import IPFS_FIXTURES
from tests.support.dagpb import cid_of, pbnode, unixfs
from tests.support.gateway import FixtureGateway
from tests.support.http import serve_app

DIR_WITH_FILES = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"
HELLO = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")  # hello.txt = "hello world\n"
MakeGateway = Callable[..., Awaitable[FixtureGateway]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def pool_of(http: aiohttp.ClientSession, *urls: str, mode: str = "car", **kw: float) -> GatewayPool:
    return GatewayPool([TrustlessGateway(u, http, **kw) for u in urls], mode=mode)  # type: ignore[arg-type]


async def _hello_cid(gw: FixtureGateway) -> bytes:
    return next(k for k, v in gw.blocks.items() if v == b"hello world\n")


async def test_raw_block_is_fetched_and_verified(make_gateway: MakeGateway, http: aiohttp.ClientSession) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    cid = gw.cids[await _hello_cid(gw)]
    data = await pool_of(http, gw.url).fetch_block(cid, Provenance())
    assert data == b"hello world\n"
    assert gw.requests["raw"] == 1


async def test_lying_gateway_is_caught_its_bytes_discarded_and_never_asked_again(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    liar = await make_gateway(DIR_WITH_FILES)
    honest = await make_gateway(DIR_WITH_FILES)
    key = await _hello_cid(liar)
    liar.lie_about.add(key)
    cid = liar.cids[key]
    pool = pool_of(http, liar.url, honest.url)
    provenance = Provenance()
    assert await pool.fetch_block(cid, provenance) == b"hello world\n"
    assert provenance.lied == [liar.url] and provenance.served_by == [honest.url]
    assert pool.health[liar.url].bad and [lie.gateway for lie in pool.lies] == [liar.url]
    before = sum(liar.requests.values())
    await pool.fetch_block(cid, Provenance())
    assert sum(liar.requests.values()) == before, "a gateway that lied must not be asked again"


async def test_lie_inside_a_car_stream_fails_over_to_an_honest_gateway(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    import hashlib

    from agent.ipfs.dagpb import decode_pbnode

    liar = await make_gateway(DIR_WITH_FILES)
    honest = await make_gateway(DIR_WITH_FILES)
    multiblock = parse_cid("zdj7WiWEsA4xt5Q2ipS7uXZej5i2E3U6GNz6mpoUTg5WkHABy")
    leaves = [link.cid for link in decode_pbnode(liar.blocks[bytes(multiblock.digest)]).links]
    assert len(leaves) == 5
    # The stream starts honestly and turns bad at the third leaf.
    liar.lie_about.add(bytes(leaves[2].digest))
    pool = pool_of(http, liar.url, honest.url)
    walker = DagWalker(pool)
    (entry,) = [e async for e in walker.walk(multiblock, "multiblock.txt")]
    data = b"".join([c async for c in walker.read_file(entry, max_bytes=1 << 20)])
    await entry.release()
    assert hashlib.sha256(data).hexdigest() == "998785f13287a9aabc2d7048e4c2905d502ff13ef40f2d135f163b5a762701c5"
    assert entry.provenance.lied == [liar.url]
    assert honest.url in entry.provenance.served_by
    assert pool.health[liar.url].bad


async def test_410_and_451_are_recorded_as_blocked_not_as_failures(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    key = await _hello_cid(gw)
    gw.blocked[key] = 451
    with pytest.raises(BlockedContent, match="451") as info:
        await pool_of(http, gw.url).fetch_block(gw.cids[key], Provenance())
    assert info.value.gateways == {gw.url: 451}
    other = await make_gateway(DIR_WITH_FILES)
    provenance = Provenance()
    pool = pool_of(http, gw.url, other.url)
    assert await pool.fetch_block(gw.cids[key], provenance) == b"hello world\n"
    assert provenance.blocked_at == {gw.url: 451}
    assert pool.health[gw.url].failures == 0 and pool.health[gw.url].blocked == 1


async def test_429_with_short_retry_after_is_retried_on_the_same_gateway(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(DIR_WITH_FILES, retry_after="0")
    key = await _hello_cid(gw)
    gw.rate_limit[key] = 1
    assert await pool_of(http, gw.url).fetch_block(gw.cids[key], Provenance()) == b"hello world\n"
    assert gw.requests["raw"] == 2, "one 429, then the retry that succeeded"


async def test_429_with_long_retry_after_moves_to_the_next_gateway(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    slow = await make_gateway(DIR_WITH_FILES, retry_after="3600")
    other = await make_gateway(DIR_WITH_FILES)
    key = await _hello_cid(slow)
    slow.rate_limit[key] = 5
    pool = pool_of(http, slow.url, other.url)
    provenance = Provenance()
    assert await pool.fetch_block(slow.cids[key], provenance) == b"hello world\n"
    assert provenance.served_by == [other.url]
    assert pool.ranked()[0].url == other.url, "a rate-limited gateway is asked last while it cools down"


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/ipfs/{cid}", handler)
    return await serve_app(app)


async def test_a_gateway_answering_html_is_not_believed(http: aiohttp.ClientSession) -> None:
    async def html(_request: web.Request) -> web.Response:
        return web.Response(text="<html>hello world\n</html>", content_type="text/html")

    runner, url = await _serve(html)
    try:
        with pytest.raises(MissingBlock, match=r"answered text/html, not application/vnd\.ipld\.raw"):
            await pool_of(http, url).fetch_block(HELLO, Provenance())
    finally:
        await runner.cleanup()


async def test_a_gateway_that_never_answers_times_out_and_the_next_one_serves(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    never = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    runner, url = await _serve(hang)
    honest = await make_gateway(DIR_WITH_FILES)
    try:
        pool = pool_of(http, url, honest.url, read_timeout_s=0.3)
        provenance = Provenance()
        assert await pool.fetch_block(HELLO, provenance) == b"hello world\n"
        assert provenance.served_by == [honest.url]
        assert "Timeout" in (pool.health[url].last_error or "")
    finally:
        never.set()
        await runner.cleanup()


async def test_a_car_stream_cut_mid_block_falls_back_to_another_gateway(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    honest = await make_gateway(DIR_WITH_FILES)

    async def truncated(request: web.Request) -> web.StreamResponse:
        upstream = await http.get(
            f"{honest.url}/ipfs/{request.match_info['cid']}",
            params=request.query,
            headers={"Accept": request.headers.get("Accept", "")},
        )
        body = await upstream.read()
        resp = web.StreamResponse(headers={"Content-Type": upstream.headers["Content-Type"]})
        await resp.prepare(request)
        await resp.write(body[: len(body) * 2 // 3])
        return resp

    runner, url = await _serve(truncated)
    try:
        pool = pool_of(http, url, honest.url)
        walker = DagWalker(pool)
        root = parse_cid("bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy")
        entries = [e async for e in walker.walk(root)]
        sizes = {}
        for e in entries:
            sizes[e.path] = len(b"".join([c async for c in walker.read_file(e, max_bytes=1 << 20)]))
            await e.release()
        assert sizes == {"ascii-copy.txt": 31, "ascii.txt": 31, "hello.txt": 12, "multiblock.txt": 1026}
        assert "truncated CAR" in (pool.health[url].last_error or "")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("dups", [True, False], ids=["dups=y", "dups=n"])
async def test_a_file_repeating_one_leaf_is_assembled_whether_or_not_the_gateway_resends_it(
    make_gateway: MakeGateway, http: aiohttp.ClientSession, dups: bool
) -> None:
    leaf = b"A" * 1000
    leaf_cid = cid_of(leaf, "raw")
    root_block = pbnode([(leaf_cid, "", 1000)] * 3, unixfs(2, filesize=3000, blocksizes=[1000] * 3))
    root = cid_of(root_block)
    gw = await make_gateway(honour_dups=dups)
    gw.add_blocks([(leaf_cid, leaf), (root, root_block)])
    walker = DagWalker(pool_of(http, gw.url))
    (entry,) = [e async for e in walker.walk(root)]
    data = b"".join([c async for c in walker.read_file(entry, max_bytes=1 << 20)])
    await entry.release()
    assert data == leaf * 3
    assert gw.requests["car"] == 1, "the repeated leaf comes from the stream or the recent-block cache"


async def test_raw_mode_fetches_block_by_block_with_the_same_result(
    make_gateway: MakeGateway, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    walker = DagWalker(pool_of(http, gw.url, mode="raw"))
    root = parse_cid("bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy")
    total = 0
    async for e in walker.walk(root):
        total += len(b"".join([c async for c in walker.read_file(e, max_bytes=1 << 20)]))
        await e.release()
    assert total == 31 + 31 + 12 + 1026
    assert gw.requests["car"] == 0 and gw.requests["raw"] >= 9


@pytest.mark.parametrize("dups", [True, False], ids=["dups=y", "dups=n"])
async def test_legitimate_repeats_of_a_leaf_do_not_count_as_unrequested(
    make_gateway: MakeGateway, http: aiohttp.ClientSession, dups: bool
) -> None:
    """A dups=y stream resends a leaf the walker already had from its cache: that copy
    was owed, not a repeat, so even a 1-byte unrequested budget is not spent."""
    leaf, other = b"A" * 1000, b"B" * 1000
    leaf_cid, other_cid = cid_of(leaf, "raw"), cid_of(other, "raw")
    links = [(leaf_cid, "", 1000), (leaf_cid, "", 1000), (other_cid, "", 1000), (leaf_cid, "", 1000)]
    root_block = pbnode(links, unixfs(2, filesize=4000, blocksizes=[1000] * 4))
    root = cid_of(root_block)
    gw = await make_gateway(honour_dups=dups)
    gw.add_blocks([(leaf_cid, leaf), (other_cid, other), (root, root_block)])
    pool = GatewayPool([TrustlessGateway(gw.url, http)], max_unrequested_bytes=1)
    walker = DagWalker(pool)
    (entry,) = [e async for e in walker.walk(root)]
    data = b"".join([c async for c in walker.read_file(entry, max_bytes=1 << 20)])
    await entry.release()
    assert data == leaf * 2 + other + leaf
    assert gw.requests["car"] == 1 and not pool.health[gw.url].excluded, pool.health[gw.url].last_error
