"""The Kubo RPC client against a fake Kubo on 127.0.0.1 speaking the real wire formats."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from agent.ipfs.cid import block_key, cid_text, parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.entries import EntryKind
from agent.ipfs.errors import BlockMismatch, BlockTooLarge, MissingBlock
from agent.sources.kubo import KuboClient
from agent.sources.kubo_wire import KuboError, KuboLink, LinkType, kubo_base_url
from tests.conftest import IPFS_FIXTURES
from tests.support.kubo_server import KUBO_VERSION, FakeKubo

DIR_WITH_FILES = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"
HAMT = IPFS_FIXTURES / "gateway-conformance" / "trustless_gateway_car" / "single-layer-hamt-with-multi-block-files.car"
ROOT = parse_cid("bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy")
HELLO = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")  # "hello world\n"
ASCII = parse_cid("zb2rhi5wN98WzzxHHgh4h4T5x1qtzoiisRoJy9di2DvLE1qza")
MULTIBLOCK = parse_cid("zdj7WiWEsA4xt5Q2ipS7uXZej5i2E3U6GNz6mpoUTg5WkHABy")
MakeKubo = Callable[..., Awaitable[FakeKubo]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_kubo() -> AsyncIterator[MakeKubo]:
    started: list[FakeKubo] = []

    async def factory(*cars: object, pin: bool = True, **knobs: object) -> FakeKubo:
        node = FakeKubo(**knobs)  # type: ignore[arg-type]
        for car in cars:
            await node.load_car(car, pin=pin)  # type: ignore[arg-type]
        await node.start()
        started.append(node)
        return node

    yield factory
    for node in started:
        await node.stop()


def kubo_target(node: FakeKubo) -> str:
    return node.url.replace("http://", "kubo://")


async def test_version(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo()
    version = await KuboClient(kubo_target(node), http).version()
    assert (version.version, version.commit, version.repo, version.system, version.golang) == (
        KUBO_VERSION["Version"],
        KUBO_VERSION["Commit"],
        KUBO_VERSION["Repo"],
        KUBO_VERSION["System"],
        KUBO_VERSION["Golang"],
    )
    assert node.log == [("POST", "version", {})]


@pytest.mark.parametrize("stream", [True, False])
async def test_pin_ls_sees_new_pins_between_calls(
    make_kubo: MakeKubo, http: aiohttp.ClientSession, stream: bool
) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    node.pins[cid_text(HELLO)] = "direct"
    client = KuboClient(node.url, http)
    assert await client.pin_ls(stream=stream) == {cid_text(ROOT): "recursive"}
    assert await client.pin_ls("all", stream=stream) == {cid_text(ROOT): "recursive", cid_text(HELLO): "direct"}
    await node.load_car(HAMT, pin=True)
    hamt_root = "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i"
    assert await client.pin_ls(stream=stream) == {cid_text(ROOT): "recursive", hamt_root: "recursive"}
    queries = [q for _, cmd, q in node.log if cmd == "pin/ls"]
    assert all(q.get("stream") == ("true" if stream else None) for q in queries)
    assert node.requests["pin/ls"] == 3


async def test_pin_ls_stream_of_many_pins_arrives_in_ragged_chunks(
    make_kubo: MakeKubo, http: aiohttp.ClientSession
) -> None:
    node = await make_kubo(HAMT, pin=False, stream_chunk=7)
    node.pins = {cid_text(cid): "recursive" for cid in node.cids.values()}
    client = KuboClient(node.url, http)
    seen = [pin async for pin in client.iter_pins()]
    assert len(seen) == len(node.cids) == 243
    assert dict(seen) == node.pins


async def test_pin_ls_stream_error_after_200_is_raised(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES, stream_error="context canceled")
    with pytest.raises(KuboError) as caught:
        await KuboClient(node.url, http).pin_ls()
    assert caught.value.message == "context canceled" and caught.value.status == 200


async def test_pin_ls_bounds(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(HAMT, pin=False)
    node.pins = {cid_text(cid): "recursive" for cid in node.cids.values()}
    with pytest.raises(Exception, match="more than 100"):
        await KuboClient(node.url, http, max_pins=100).pin_ls()
    with pytest.raises(ValueError, match="pin type"):
        await KuboClient(node.url, http).pin_ls("everything")


async def test_ls_lists_a_directory(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    links = await KuboClient(node.url, http).ls(ROOT)
    assert links == [
        KuboLink("ascii-copy.txt", cid_text(ASCII), 31, LinkType.FILE),
        KuboLink("ascii.txt", cid_text(ASCII), 31, LinkType.FILE),
        KuboLink("hello.txt", cid_text(HELLO), 12, LinkType.FILE),
        KuboLink("multiblock.txt", cid_text(MULTIBLOCK), 1026, LinkType.FILE),
    ]
    assert not any(link.is_directory for link in links)
    assert node.log[-1][2]["offline"] == "true"


async def test_dag_export_streams_a_verified_car(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    async with KuboClient(node.url, http).dag_export(ROOT) as reader:
        header = await reader.read_header()
        blocks = [block async for block in reader]
    assert header.roots == (ROOT,)
    # Every block once, although two names share the ascii.txt block.
    assert {b.key for b in blocks} == set(node.blocks) and len(blocks) == len(node.blocks) == 9
    assert all(node.blocks[b.key] == b.data for b in blocks)
    assert reader.blocks_read == 9


async def test_dag_export_with_a_corrupted_block_raises_mismatch(
    make_kubo: MakeKubo, http: aiohttp.ClientSession
) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    node.corrupt.add(block_key(HELLO))
    good: list[bytes] = []
    with pytest.raises(BlockMismatch) as caught:  # noqa: PT012 - the mismatch surfaces mid-stream, in the loop
        async with KuboClient(node.url, http).dag_export(ROOT) as reader:
            async for block in reader:
                good.append(block.key)
    assert caught.value.cid == str(HELLO) and caught.value.source == f"kubo:{node.url}"
    assert block_key(HELLO) not in good  # the bad bytes never reached the caller


async def test_dag_export_of_an_incomplete_dag_just_ends(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    # Kubo reports a block missing mid-export only in an HTTP trailer, which aiohttp does
    # not surface: the caller sees a shorter CAR and the walker then finds the hole.
    node = await make_kubo(DIR_WITH_FILES)
    node.remove_block(HELLO)
    async with KuboClient(node.url, http).dag_export(ROOT) as reader:
        keys = [block.key async for block in reader]
    assert block_key(HELLO) not in keys and len(keys) < 8


async def test_errors_map_message_and_code(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    client = KuboClient(node.url, http)
    unknown = parse_cid("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    with pytest.raises(KuboError) as caught:
        await client.block_get(unknown)
    err = caught.value
    assert (err.status, err.code, err.command) == (500, 0, "block/get")
    assert err.message == f"block was not found locally (offline): ipld: could not find {unknown}"
    with pytest.raises(KuboError) as caught:
        await client.name_resolve("k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8")
    assert caught.value.message.startswith("could not resolve name")
    # A body that is not go-ipfs-cmds JSON (here: an unknown command) is still reported.
    with pytest.raises(KuboError) as caught:
        await client._json("no/such/command")
    assert caught.value.status == 404 and caught.value.code is None
    assert "404 page not found" in caught.value.message


async def test_get_is_refused_and_the_client_only_posts(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    async with http.get(f"{node.url}/api/v0/version") as resp:
        assert resp.status == 405
    client = KuboClient(node.url, http)
    await client.version()
    await client.block_get(HELLO)
    await client.ls(ROOT)
    assert [m for m, _, _ in node.log] == ["GET", "POST", "POST", "POST"]


async def test_block_get_verifies_and_bounds(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    client = KuboClient(node.url, http)
    assert await client.block_get(HELLO) == b"hello world\n"
    node.corrupt.add(block_key(HELLO))
    with pytest.raises(BlockMismatch):
        await client.block_get(HELLO)
    with pytest.raises(BlockTooLarge):
        await KuboClient(node.url, http, max_block_bytes=8).block_get(ASCII)


async def test_name_resolve(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo()
    name = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"
    node.names[name] = f"/ipfs/{ROOT}"
    assert await KuboClient(node.url, http).name_resolve(f"/ipns/{name}") == f"/ipfs/{ROOT}"


async def test_a_node_that_never_answers_times_out(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(hang={"version"})
    with pytest.raises(KuboError, match=r"no answer within 0.2s"):
        await KuboClient(node.url, http, timeout_s=0.2).version()


async def test_unreachable_node_is_a_kubo_error(http: aiohttp.ClientSession) -> None:
    node = FakeKubo()
    url = await node.start()
    await node.stop()  # the port is closed now
    with pytest.raises(KuboError, match=r"ClientConnectorError|Connect"):
        await KuboClient(url, http).version()


async def test_block_source_lets_the_walker_read_every_file(make_kubo: MakeKubo, http: aiohttp.ClientSession) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    source = KuboClient(kubo_target(node), http).block_source()
    walker = DagWalker(source)
    files: dict[str, bytes] = {}
    async for entry in walker.walk(ROOT):
        assert entry.kind == EntryKind.FILE, entry
        files[entry.path] = b"".join([chunk async for chunk in walker.read_file(entry, max_bytes=1 << 20)])
        if entry.root_block is not None:
            assert entry.provenance.served_by == [f"kubo:{node.url}"]
        await entry.release()
    assert sorted(files) == ["ascii-copy.txt", "ascii.txt", "hello.txt", "multiblock.txt"]
    assert files["hello.txt"] == b"hello world\n"
    assert files["ascii.txt"] == files["ascii-copy.txt"] == b"hello application/vnd.ipld.car\n"
    assert len(files["multiblock.txt"]) == 1026 and files["multiblock.txt"].startswith(b"Lorem ipsum dolor sit amet")
    # Every block once, plus the shared ascii block again: the walker reopens a repeated file to read it.
    assert node.requests["block/get"] == len(node.blocks) + 1
    assert all(q.get("offline") == "true" for _, cmd, q in node.log if cmd == "block/get")


async def test_block_source_reports_corrupt_and_missing_blocks(
    make_kubo: MakeKubo, http: aiohttp.ClientSession
) -> None:
    node = await make_kubo(DIR_WITH_FILES)
    node.corrupt.add(block_key(HELLO))
    node.remove_block(ASCII)
    walker = DagWalker(KuboClient(node.url, http).block_source())
    entries = {entry.path: entry async for entry in walker.walk(ROOT)}
    label = f"kubo:{node.url}"
    assert entries["hello.txt"].kind == EntryKind.ERROR and isinstance(entries["hello.txt"].error, BlockMismatch)
    assert entries["hello.txt"].provenance.lied == [label]
    assert entries["ascii.txt"].kind == EntryKind.ERROR and isinstance(entries["ascii.txt"].error, MissingBlock)
    assert "could not find" in str(entries["ascii.txt"].error)
    assert entries["multiblock.txt"].kind == EntryKind.FILE
    for entry in entries.values():
        await entry.release()


def test_target_urls() -> None:
    assert kubo_base_url("kubo://127.0.0.1:5001") == "http://127.0.0.1:5001"
    assert kubo_base_url("kubo://localhost") == "http://localhost:5001"
    assert kubo_base_url("http://127.0.0.1:5001/api/v0/") == "http://127.0.0.1:5001"
    assert kubo_base_url("https://ipfs.example.org/rpc/api/v0") == "https://ipfs.example.org/rpc"
    assert kubo_base_url("/ip4/127.0.0.1/tcp/5001") == "http://127.0.0.1:5001"
    assert kubo_base_url("/ip6/::1/tcp/5001") == "http://[::1]:5001"
    for bad in (
        "ftp://127.0.0.1:5001",
        "http://user:pw@127.0.0.1:5001",
        "kubo://",
        "127.0.0.1:5001",
        "http://127.0.0.1:5001/?x=1",
    ):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            kubo_base_url(bad)
