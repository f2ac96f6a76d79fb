"""The Arweave client against a fake gateway on 127.0.0.1 that parses the GraphQL it is sent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from agent.ipfs.errors import TooLarge
from agent.sources.arweave import ArweaveCursor, new_transactions
from agent.sources.arweave_client import ArweaveClient
from agent.sources.arweave_types import (
    ArweaveGatewayError,
    ArweaveIntegrityError,
    ArweaveNotFound,
    ArweaveQueryError,
    ArweaveTooLarge,
    InvalidTxid,
    check_txid,
)
from tests.conftest import MEDIA_FIXTURES
from tests.support.arweave_server import FakeArweave, make_txid

PHOTOS = sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").glob("*.jpg"))
WATCH = {"App-Name": ["ExampleShare"], "Content-Type": ["image/jpeg", "image/png"]}
MakeArweave = Callable[..., Awaitable[FakeArweave]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_arweave() -> AsyncIterator[MakeArweave]:
    started: list[FakeArweave] = []

    async def factory(**knobs: object) -> FakeArweave:
        gw = FakeArweave(**knobs)  # type: ignore[arg-type]
        await gw.start()
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await gw.stop()


def photo(i: int) -> bytes:
    return PHOTOS[i % len(PHOTOS)].read_bytes()


def share(gw: FakeArweave, i: int, height: int | None, content_type: str = "image/jpeg") -> str:
    """A matching upload of fixture photo `i`."""
    tags = [("App-Name", "ExampleShare"), ("Content-Type", content_type), ("Title", f"photo {i}")]
    return gw.add(photo(i), tags, height, content_type=content_type).id


async def test_query_filters_by_tags_and_height_across_pages(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    wanted = [share(gw, 0, 1200), share(gw, 1, 1201, "image/png"), share(gw, 2, 1205)]
    share(gw, 3, 1100)  # below the floor
    gw.add(b"%PDF-1.4", {"App-Name": "ExampleShare", "Content-Type": "application/pdf"}, 1203)  # other type
    gw.add(photo(4), {"App-Name": "OtherApp", "Content-Type": "image/jpeg"}, 1204)  # other app
    client = ArweaveClient(gw.url, http)
    first = await client.query(WATCH, min_block_height=1150, first=2)
    assert [tx.id for tx in first.txs] == wanted[:2] and first.has_next_page
    second = await client.query(WATCH, min_block_height=1150, after=first.end_cursor, first=2)
    assert [tx.id for tx in second.txs] == wanted[2:] and not second.has_next_page
    tx = first.txs[1]
    assert tx.tag_map() == {"App-Name": ["ExampleShare"], "Content-Type": ["image/png"], "Title": ["photo 1"]}
    assert tx.tag("Title") == "photo 1" and tx.tags[0] == ("App-Name", "ExampleShare")
    assert (tx.data_size, tx.data_type, tx.block_height) == (len(photo(1)), "image/png", 1201)
    assert tx.block_timestamp == 1_700_000_000 + 1201 * 120 and len(tx.owner) == 43
    # What the gateway was asked, after resolving the variables the client sent.
    assert gw.queries[0]["tags"] == [
        {"name": "App-Name", "values": ["ExampleShare"]},
        {"name": "Content-Type", "values": ["image/jpeg", "image/png"]},
    ]
    assert gw.queries[0]["block"] == {"min": 1150} and gw.queries[0]["first"] == 2
    assert gw.queries[0]["sort"].value == "HEIGHT_ASC" and "after" not in gw.queries[0]


async def test_new_transactions_returns_each_exactly_once_across_polls(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    client = ArweaveClient(gw.url, http)
    batch1 = [share(gw, i, 100 + i) for i in range(5)]
    pending = gw.add(photo(5), [("App-Name", "ExampleShare"), ("Content-Type", "image/jpeg")], None)
    returned: list[str] = []

    state = ArweaveCursor()
    txs, state = await new_transactions(client, WATCH, state, page_size=2)
    assert [t.id for t in txs] == batch1  # three pages; the pending one is held back
    returned += [t.id for t in txs]

    # Between polls: the pending upload is mined, more arrive (two in one block), the state
    # goes through JSON as the daemon would store it.
    gw.mine(pending, 110)
    batch2 = [share(gw, 6, 110), share(gw, 7, 111)]
    state = ArweaveCursor.from_json(json.loads(json.dumps(state.to_json())))
    txs, state = await new_transactions(client, WATCH, state, page_size=2)
    assert sorted(t.id for t in txs) == sorted([pending.id, *batch2])
    returned += [t.id for t in txs]

    txs, state = await new_transactions(client, WATCH, state, page_size=2)
    assert txs == []  # nothing new: nothing again
    batch3 = [share(gw, 8, 112), share(gw, 9, 112), share(gw, 10, 115)]
    txs, state = await new_transactions(client, WATCH, state, page_size=2)
    assert [t.id for t in txs] == sorted(batch3[:2]) + batch3[2:]
    returned += [t.id for t in txs]

    assert sorted(returned) == sorted([*batch1, pending.id, *batch2, *batch3])
    assert len(returned) == len(set(returned))
    assert state.last_height == 115 and state.seen == (batch3[2],)


async def test_new_transactions_bounds_pages_per_poll(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    ids = [share(gw, i, 50 + i) for i in range(7)]
    client = ArweaveClient(gw.url, http)
    polls: list[list[str]] = []
    state = ArweaveCursor(height=40)
    for _ in range(3):
        txs, state = await new_transactions(client, WATCH, state, max_pages=1, page_size=3)
        polls.append([t.id for t in txs])
    assert polls == [ids[:3], ids[3:6], ids[6:]]
    assert gw.requests["graphql"] == 3 and all(q["block"] == {"min": 40} for q in gw.queries)


async def test_a_refused_cursor_restarts_at_the_last_block_without_repeats(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    first = [share(gw, 0, 10), share(gw, 1, 12), share(gw, 2, 12)]
    client = ArweaveClient(gw.url, http)
    txs, state = await new_transactions(client, WATCH, ArweaveCursor())
    assert [t.id for t in txs] == [first[0], *sorted(first[1:])]
    gw.refuse_cursors = True  # e.g. the daemon moved to another gateway
    later = [share(gw, 3, 12), share(gw, 4, 13)]
    txs, state = await new_transactions(client, WATCH, state)
    assert sorted(t.id for t in txs) == sorted(later)
    assert gw.queries[-1]["block"] == {"min": 12} and "after" not in gw.queries[-1]


async def test_fetch_checks_the_ario_digest(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    txid = share(gw, 0, 10)
    content = await ArweaveClient(gw.url, http).fetch(txid, max_bytes=1 << 20)
    assert content.data == photo(0) and content.digest_checked
    assert content.sha256 == hashlib.sha256(photo(0)).hexdigest()
    assert (content.txid, content.gateway, content.content_type) == (txid, gw.url, "image/jpeg")


async def test_fetch_checks_an_rfc3230_digest(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    txid = share(gw, 1, 10)
    gw.rfc3230.add(txid)
    content = await ArweaveClient(gw.url, http).fetch(txid, max_bytes=1 << 20)
    assert content.digest_checked and content.data == photo(1)


async def test_fetch_with_a_lying_digest_raises_naming_the_gateway(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    txid = share(gw, 2, 10)
    gw.lie_digest.add(txid)
    with pytest.raises(ArweaveIntegrityError) as caught:
        await ArweaveClient(gw.url, http).fetch(txid, max_bytes=1 << 20)
    assert caught.value.gateway == gw.url and caught.value.txid == txid
    assert gw.url in str(caught.value) and "discarded" in str(caught.value)


async def test_fetch_without_a_digest_says_it_was_not_checked(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    txid = share(gw, 3, 10)
    gw.no_digest.add(txid)
    content = await ArweaveClient(gw.url, http).fetch(txid, max_bytes=1 << 20)
    assert content.data == photo(3) and not content.digest_checked


async def test_fetch_enforces_the_byte_limit(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    txid = share(gw, 4, 10)
    with pytest.raises(ArweaveTooLarge) as caught:
        await ArweaveClient(gw.url, http).fetch(txid, max_bytes=len(photo(4)) - 1)
    assert isinstance(caught.value, TooLarge)
    assert (await ArweaveClient(gw.url, http).fetch(txid, max_bytes=len(photo(4)))).data == photo(4)


async def test_malformed_txids_are_rejected_before_any_request(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    client = ArweaveClient(gw.url, http)
    good = make_txid(b"x")
    assert check_txid(good) == good
    for bad in ("", good[:-1], good + "A", good[:-1] + "=", good[:-1] + "/", "../../etc/passwd", good[:-1] + "é"):
        with pytest.raises(InvalidTxid):
            await client.fetch(bad, max_bytes=100)
    assert gw.requests["raw"] == 0


async def test_unknown_tx_is_not_found(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    with pytest.raises(ArweaveNotFound):
        await ArweaveClient(gw.url, http).fetch(make_txid(b"nothing"), max_bytes=100)


async def test_the_fake_gateway_rejects_fields_outside_the_schema(
    make_arweave: MakeArweave, http: aiohttp.ClientSession
) -> None:
    gw = await make_arweave()
    client = ArweaveClient(gw.url, http)
    with pytest.raises(ArweaveQueryError, match='Cannot query field "size" on type "Transaction"'):
        await client.graphql("query { transactions(first: 1) { edges { node { id size } } } }", {})
    inline = await client.graphql(
        'query { transactions(tags: [{name: "App-Name", values: ["ExampleShare"]}], sort: HEIGHT_ASC) '
        "{ pageInfo { hasNextPage } } }",
        {},
    )
    assert inline == {"transactions": {"pageInfo": {"hasNextPage": False}}}
    with pytest.raises(ValueError, match="first must be between 1 and 100"):
        await client.query(WATCH, first=101)


async def test_fetch_does_not_follow_redirects(make_arweave: MakeArweave, http: aiohttp.ClientSession) -> None:
    gw = await make_arweave()
    txid = share(gw, 5, 10)
    gw.redirect.add(txid)
    with pytest.raises(ArweaveGatewayError, match=r"redirected .302. to http://sandbox.invalid/raw/.*not followed"):
        await ArweaveClient(gw.url, http).fetch(txid, max_bytes=1 << 20)
