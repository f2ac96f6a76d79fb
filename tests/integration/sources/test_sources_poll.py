"""The poll's dispatch table and the cursors it resumes from: a target polled by an
earlier version, whose targets.state holds today's JSON, carries on where it stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.ipfs.cid import cid_text
from agent.model.item_key import ItemKey
from agent.model.target import TargetKind
from agent.pipeline import Scanner
from agent.services.polling import PollContext, poll
from agent.sources.base import SourceEnv
from agent.sources.registry import SOURCES
from agent.sources.targets import parse_watch_target
from tests.conftest import IPFS_FIXTURES
from tests.support.agent import settings_for
from tests.support.kubo_server import FakeKubo

DIR_WITH_FILES = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"
CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
TXID = "a" * 43


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _nothing_known(key: ItemKey) -> bool:
    return False


def _no_scan() -> Scanner:
    raise AssertionError("this poll must scan nothing")


def test_the_dispatch_table_serves_every_watchable_kind_and_nothing_else() -> None:
    assert set(SOURCES) == {kind for kind in TargetKind if kind.watchable}
    assert TargetKind.LOCAL not in SOURCES and TargetKind.CAR_FILE not in SOURCES


# The targets.state JSON each kind wrote before the Source protocol existed.
STORED_STATES: list[tuple[str, dict[str, Any]]] = [
    (f"ipfs://{CID}", {"root": CID, "complete": True}),
    (
        "ipns://k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
        {"sequence": 7, "root": CID, "complete": False},
    ),
    ("dnslink://docs.example.org", {"dnslink": f"/ipfs/{CID}", "root": CID, "complete": True}),
    ("kubo://127.0.0.1:5001", {"pins_done": [CID]}),
    (
        "arweave+http://127.0.0.1:1984/graphql?App-Name=ExampleShare",
        {
            "cursor": {"height": 100, "cursor": "opaque", "last_height": 120, "seen": [TXID]},
            "retry": ["b" * 43],
        },
    ),
]


@pytest.mark.parametrize(("url", "state"), STORED_STATES, ids=[u.split(":", 1)[0] for u, _ in STORED_STATES])
async def test_a_stored_state_is_read_back_as_its_cursor_and_written_with_the_same_keys(
    url: str, state: dict[str, Any], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    target = parse_watch_target(url)
    source = SOURCES[target.kind](SourceEnv(http, settings_for(tmp_path), _nothing_known))
    assert source.read_cursor(state).to_state() == state


async def test_an_ipfs_target_completed_by_an_earlier_version_is_not_scanned_again(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    stored = {"root": CID, "complete": True, "left_by_another_version": 1}
    ctx = PollContext(settings_for(tmp_path), http, _no_scan, _nothing_known)
    outcome = await poll(ctx, parse_watch_target(f"ipfs://{CID}"), stored)
    assert outcome.note == f"unchanged: {CID}" and not outcome.reports
    assert outcome.state == stored, "keys no cursor knows are kept as they were"


async def test_kubo_pins_done_before_are_not_walked_and_unpinned_ones_are_forgotten(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    kubo = FakeKubo()
    (root,) = await kubo.load_car(DIR_WITH_FILES, pin=True)
    await kubo.start()
    try:
        gone = "bafkqaaa"  # pinned once, since unpinned
        ctx = PollContext(settings_for(tmp_path), http, _no_scan, _nothing_known)
        target = parse_watch_target(f"kubo://{kubo.url.split('://', 1)[1]}")
        outcome = await poll(ctx, target, {"pins_done": [cid_text(root), gone]})
        assert outcome.state == {"pins_done": [cid_text(root)]}
        assert outcome.note == "1 pins, 0 new" and kubo.requests["block/get"] == 0
    finally:
        await kubo.stop()


async def test_a_new_kubo_pin_is_named_with_the_nodes_own_block_source(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    kubo = FakeKubo()
    (root,) = await kubo.load_car(DIR_WITH_FILES, pin=True)
    await kubo.start()
    try:
        target = parse_watch_target(f"kubo://{kubo.url.split('://', 1)[1]}")
        source = SOURCES[TargetKind.KUBO](SourceEnv(http, settings_for(tmp_path), _nothing_known))
        discovery = await source.discover(target, source.read_cursor({}))
        (pin,) = discovery.pins
        assert pin.key == cid_text(root) and pin.label == f"{target.url}/pin/{cid_text(root)}"
    finally:
        await kubo.stop()
