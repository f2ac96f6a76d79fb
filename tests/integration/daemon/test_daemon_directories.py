"""Issue 8 item 20: an IPNS name moving to a new root fetches only blocks never seen.
Unchanged directories and HAMT shards are remembered in the store once everything
under them was examined, and a later root skips them unfetched; a directory with
something not examined under it is walked again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.ipfs.cid import CID, block_key, parse_cid
from agent.runtime.agent import Agent
from tests.support.agent import settings_for
from tests.support.dagpb import block, hamt_shard
from tests.support.gateway import FixtureGateway
from tests.support.ipns import IpnsPublisher
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


def key(cid: CID) -> str:
    return bytes(cid.digest).hex()


def requested(gw: FixtureGateway) -> set[str]:
    """Every CID a request was made for, by multihash."""
    return {parse_cid(cid).digest.hex() for fmt, cid, _ in gw.log if fmt in ("car", "raw")}


def site(builder: UnixFSBuilder, version: int) -> tuple[CID, dict[str, CID]]:
    """A site with nested directories and a HAMT directory; version 2 adds a file at the
    top and an entry to the HAMT's root shard, and changes nothing else."""
    cids: dict[str, CID] = {}

    def add(name: str, data: bytes) -> tuple[CID, int]:
        cid, size = builder.add_file(data)
        cids[name] = cid
        return cid, size

    docs = builder.add_directory({"x.txt": add("x", b"x\n"), "y.txt": add("y", b"y\n")})
    deep = builder.add_directory({"z.txt": add("z", b"z\n")})
    pics = builder.add_directory({"deep": deep})
    cids.update(docs=docs[0], deep=deep[0], pics=pics[0])
    e1, e2, c = add("e1", b"e1\n"), add("e2", b"e2\n"), add("c", b"c\n")
    cids["shard"] = block(builder.blocks, hamt_shard([(e1[0], "00e1.txt", 3), (e2[0], "01e2.txt", 3)]))
    top = [(cids["shard"], "00", 10), (c[0], "01c.txt", 3)]
    if version == 2:
        top.append((add("d", b"d\n")[0], "02d.txt", 3))
    cids["big"] = block(builder.blocks, hamt_shard(top))
    entries = {"a.txt": add("a", b"alpha\n"), "docs": docs, "pics": pics, "big": (cids["big"], 40)}
    if version == 2:
        entries["b.txt"] = add("b", b"beta\n")
    root, _ = builder.add_directory(entries)
    cids["root"] = root
    return root, cids


async def test_a_new_root_fetches_only_blocks_never_seen(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    builder = UnixFSBuilder()
    first, old = site(builder, 1)
    second, new = site(builder, 2)
    gw.add_blocks(builder.blocks)
    ipns = IpnsPublisher(gw)
    ipns.publish(first)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        target = await agent.add_target(f"ipns://{ipns.name}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        # (the sub-shard travels inside the HAMT's entity CAR: no request of its own)
        assert {key(old[n]) for n in ("docs", "deep", "pics", "big")} <= requested(gw)
        assert await agent.store.items.count() == 7  # files only

        ipns.publish(second)
        gw.log.clear()
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert requested(gw) == {key(new[n]) for n in ("root", "big", "b", "d")}, (
            "unchanged directories and the unchanged HAMT shard are not fetched again"
        )
        assert await agent.store.items.count() == 9
        names = ("root", "docs", "deep", "pics", "shard", "big")
        stored = await agent.store.items.get_many([key(old[n]) for n in names] + [key(new["root"]), key(new["big"])])
        assert {k: r.status for k, r in stored.items()} == {
            **{key(old[n]): "directory" for n in names},
            key(new["root"]): "directory",
            key(new["big"]): "directory",
        }


async def test_a_directory_with_an_unexamined_entry_is_walked_again(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    builder = UnixFSBuilder()
    first, old = site(builder, 1)
    second, new = site(builder, 2)
    gw.add_blocks(builder.blocks)
    gw.hide.add(block_key(old["y"]))  # docs/y.txt cannot be fetched
    ipns = IpnsPublisher(gw)
    ipns.publish(first)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        target = await agent.add_target(f"ipns://{ipns.name}", 60)
        await agent.poll_target(target.id, scheduled=False)
        stored = await agent.store.items.get_many([key(old[n]) for n in ("root", "docs", "pics")])
        assert key(old["docs"]) not in stored and key(old["root"]) not in stored, "incomplete: not remembered"
        assert stored[key(old["pics"])].status == "directory"

        gw.hide.clear()
        ipns.publish(second)
        gw.log.clear()
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        fetched = requested(gw)
        assert {key(new["docs"]), key(new["y"])} <= fetched, "the incomplete directory is walked again"
        assert key(new["pics"]) not in fetched and key(new["x"]) not in fetched
        assert (await agent.store.items.get_many([key(new["docs"])]))[key(new["docs"])].status == "directory"


async def test_with_a_path_rule_loaded_remembered_directories_are_walked_again(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    builder = UnixFSBuilder()
    first, old = site(builder, 1)
    second, new = site(builder, 2)
    gw.add_blocks(builder.blocks)
    deny = tmp_path / "paths.deny"
    deny.write_text("# nothing yet\n")
    ipns = IpnsPublisher(gw)
    ipns.publish(first)
    async with Agent(settings_for(tmp_path, gw.url, lists=[str(deny)])) as agent:
        await agent.refresh_lists()
        target = await agent.add_target(f"ipns://{ipns.name}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert (await agent.store.items.get_many([key(old["pics"])]))[key(old["pics"])].status == "directory"

        deny.write_text("/pics/deep/z.txt\n")  # a path under a remembered directory
        await agent.refresh_lists()
        ipns.publish(second)
        gw.log.clear()
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        fetched = requested(gw)
        assert {key(new["pics"]), key(new["deep"])} <= fetched, "the paths below are listed again"
        assert key(new["z"]) not in fetched, "files examined before are still not fetched"
        findings = await agent.store.findings.recent()
        assert [(f.item_key, f.signal_type) for f in findings] == [(key(new["z"]), "path")]


async def test_a_document_with_an_unexamined_link_is_followed_again(make_gateway: MakeGateway, tmp_path: Path) -> None:
    # A dag-cbor document is an item of its own: once recorded it must not make a later
    # root skip links of it that could not be fetched the first time.
    import dag_cbor
    from multiformats import CID as MfCID
    from multiformats import multihash

    gw = await make_gateway()
    builder = UnixFSBuilder()
    hidden, _ = builder.add_file(b"hidden the first time\n")
    seen, _ = builder.add_file(b"seen\n")
    doc = dag_cbor.encode({"a": MfCID.decode(bytes(hidden)), "b": MfCID.decode(bytes(seen))})
    doc_cid = parse_cid(str(MfCID("base32", 1, "dag-cbor", multihash.digest(doc, "sha2-256"))))
    builder.blocks.append((doc_cid, doc))
    first, _ = builder.add_directory({"doc": (doc_cid, len(doc))})
    extra, _ = builder.add_file(b"new\n")
    second, _ = builder.add_directory({"doc": (doc_cid, len(doc)), "new.txt": (extra, 4)})
    gw.add_blocks(builder.blocks)
    gw.hide.add(block_key(hidden))
    ipns = IpnsPublisher(gw)
    ipns.publish(first)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        target = await agent.add_target(f"ipns://{ipns.name}", 60)
        await agent.poll_target(target.id, scheduled=False)
        assert (await agent.store.items.get_many([key(hidden)]))[key(hidden)].status == "incomplete"

        gw.hide.clear()
        ipns.publish(second)
        gw.log.clear()
        await agent.poll_target(target.id, scheduled=False)
        assert key(hidden) in requested(gw), "the link missed the first time is fetched now"
        assert key(seen) not in requested(gw), "what was examined is still not fetched again"
        assert (await agent.store.items.get_many([key(hidden)]))[key(hidden)].status == "verified"
