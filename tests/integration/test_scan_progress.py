"""The scan reports each item as soon as it is examined (the CLI's progress bar counts these),
not all at once when the whole DAG is done."""

from __future__ import annotations

import asyncio

from aiohttp import web
from multiformats import CID

from agent.config import GatewaySettings, Settings
from agent.ipfs.cid import block_key, parse_cid
from agent.model.report import ItemReport, ItemStatus
from agent.pipeline import Scanner
from tests.support.dagpb import cid_of, pbnode, unixfs
from tests.support.gateway import FixtureGateway

# Long enough that a test which never sees progress fails instead of hanging.
DEADLINE_S = 60.0


class HoldingGateway(FixtureGateway):
    """Holds every request for one block until the test lets it go."""

    def __init__(self, held: CID) -> None:
        super().__init__()
        self.held = block_key(held)
        self.let_go = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if block_key(parse_cid(request.match_info["cid"])) == self.held:
            await self.let_go.wait()
        return await super().handle(request)


def directory(count: int) -> tuple[CID, list[tuple[CID, bytes]], CID]:
    """A directory of `count` one-block files; returns its CID, its blocks and the last file's CID."""
    files = [(cid_of(f"file {i}\n".encode(), "raw"), f"file {i}\n".encode()) for i in range(count)]
    node = pbnode([(cid, f"f{i:02}.txt", len(data)) for i, (cid, data) in enumerate(files)], unixfs(1))
    root = cid_of(node)
    return root, [(root, node), *files], files[-1][0]


async def test_items_are_reported_while_the_scan_is_still_running() -> None:
    root, blocks, last = directory(6)
    gw = HoldingGateway(last)
    gw.add_blocks(blocks)
    await gw.start()
    seen: list[ItemReport] = []
    earlier_ones_seen = asyncio.Event()

    def on_item(item: ItemReport) -> None:
        seen.append(item)
        if len(seen) == 5:
            earlier_ones_seen.set()

    try:
        # The gateway read timeout outlasts the deadline: the held request only ends when let go.
        settings = Settings(gateways=GatewaySettings(read_timeout_s=DEADLINE_S * 3))
        scanner = Scanner(settings, gateways=[gw.url], concurrency=3, on_item=on_item, hash_media=False)
        scan = asyncio.create_task(scanner.scan(f"ipfs://{root}"))
        # The last file is held at the gateway: the five others must be reported before it is served.
        await asyncio.wait_for(earlier_ones_seen.wait(), DEADLINE_S)
        assert not scan.done()
        assert sorted(i.path for i in seen) == [f"f{i:02}.txt" for i in range(5)]
        gw.let_go.set()
        report = await asyncio.wait_for(scan, DEADLINE_S)
    finally:
        gw.let_go.set()
        await gw.stop()
    assert len(seen) == 6 and seen[-1].path == "f05.txt"
    # The report itself keeps DAG order, whatever order the items finished in.
    assert [i.path for i in report.items] == [f"f{i:02}.txt" for i in range(6)]
    assert all(i.status == ItemStatus.VERIFIED for i in report.items)
