"""The DAG walker over real fixture DAGs and over deliberately broken ones."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.ipfs.carfile import CarFileBlockSource
from agent.ipfs.cid import parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.dagpb import decode_pbnode, decode_unixfs
from agent.ipfs.entries import DagEntry, EntryKind
from agent.ipfs.errors import DagCycle, DagError, PathEscape, TooLarge
from tests.conftest import IPFS_FIXTURES
from tests.support.dagpb import DictSource, cid_of, pbnode, unixfs

GC = IPFS_FIXTURES / "gateway-conformance"


@pytest.fixture
async def car_source(request: pytest.FixtureRequest) -> AsyncIterator[CarFileBlockSource]:
    source = await CarFileBlockSource.index(request.param)
    yield source
    source.close()


async def _entries(walker: DagWalker, root: str) -> list[DagEntry]:
    out = [e async for e in walker.walk(parse_cid(root))]
    for e in out:
        await e.release()
    return out


async def _content(walker: DagWalker, entry: DagEntry) -> bytes:
    return b"".join([c async for c in walker.read_file(entry, max_bytes=1 << 30)])


async def _walk_car(path: Path) -> tuple[CarFileBlockSource, DagWalker, list[DagEntry]]:
    source = await CarFileBlockSource.index(path)
    walker = DagWalker(source)
    entries = [e async for e in walker.walk(source.header.roots[0])]
    return source, walker, entries


async def test_directory_with_files_yields_exactly_its_four_files_with_true_contents() -> None:
    source, walker, entries = await _walk_car(GC / "path_gateway_unixfs" / "dir-with-files.car")
    try:
        assert [e.path for e in entries] == ["ascii-copy.txt", "ascii.txt", "hello.txt", "multiblock.txt"]
        contents = {e.path: await _content(walker, e) for e in entries}
    finally:
        source.close()
    assert contents["hello.txt"] == b"hello world\n"
    assert contents["ascii.txt"] == contents["ascii-copy.txt"]
    assert len(contents["multiblock.txt"]) == 1026


async def test_single_layer_hamt_enumerates_all_1000_entries() -> None:
    source, _walker, entries = await _walk_car(
        GC / "trustless_gateway_car" / "single-layer-hamt-with-multi-block-files.car"
    )
    source.close()
    names = {e.path for e in entries}
    assert len(entries) == 1000 and len(names) == 1000
    assert names == {f"{i}.txt" for i in range(1, 1001)}
    assert all(e.kind == EntryKind.FILE and e.size == 1026 for e in entries)


async def test_multilayer_hamt_with_bucket_collisions_is_walked_through_child_shards() -> None:
    source, walker, entries = await _walk_car(
        IPFS_FIXTURES / "extras" / "boxo-directory-with-multilayer-hamt-and-multiblock-files.car"
    )
    try:
        files = [e for e in entries if e.kind == EntryKind.FILE]
        assert len(files) >= 2
        for entry in files:
            assert len(await _content(walker, entry)) == entry.size
    finally:
        source.close()


async def test_mode_and_mtime_are_read_and_symlinks_reported_not_followed() -> None:
    source, _walker, entries = await _walk_car(IPFS_FIXTURES / "extras" / "boxo-unixfs-dir-with-mode-mtime.car")
    source.close()
    files = [e for e in entries if e.kind == EntryKind.FILE]
    links = [e for e in entries if e.kind == EntryKind.SYMLINK]
    assert files and all(e.mode == 0o644 and e.mtime and e.mtime > 1_600_000_000 for e in files)
    assert len(links) == 1 and links[0].symlink_target and not links[0].symlink_target.startswith("/")


async def test_symlink_fixture_reports_target_and_never_follows_it() -> None:
    source, _walker, entries = await _walk_car(GC / "path_gateway_unixfs" / "symlink.car")
    source.close()
    by_path = {e.path: e for e in entries}
    assert by_path["bar"].kind == EntryKind.SYMLINK and by_path["bar"].symlink_target == "foo"
    assert by_path["foo"].kind == EntryKind.FILE


async def test_link_names_that_would_leave_the_root_are_refused_and_reported() -> None:
    source, _walker, entries = await _walk_car(GC / "path_gateway_tar" / "outside-root.car")
    source.close()
    refused = [e for e in entries if e.kind == EntryKind.ERROR]
    assert refused and all(isinstance(e.error, PathEscape) for e in refused)
    assert any(".." in e.path for e in refused)
    # what stays inside the root is still reported
    assert any(e.kind == EntryKind.FILE for e in entries)


async def test_dot_dot_names_that_stay_inside_the_root_are_normalised_and_walked() -> None:
    source, _walker, entries = await _walk_car(GC / "path_gateway_tar" / "inside-root.car")
    source.close()
    assert entries and not any(e.kind == EntryKind.ERROR for e in entries)
    assert "foobar/file" in {e.path for e in entries}
    assert not any(".." in e.path for e in entries)


@pytest.mark.parametrize(
    ("parent", "name"),
    [
        ("", "../x"),
        ("a", "../../x"),
        ("", "/etc/passwd"),
        ("a", ".."),
        ("a", ""),
        ("a", "."),
        ("a", "x\x00y"),
        ("a", "..\\x"),
    ],
)
def test_escaping_names_are_refused(parent: str, name: str) -> None:
    from agent.ipfs.paths import safe_join

    with pytest.raises(PathEscape):
        safe_join(parent, name)


async def test_dag_cbor_document_links_are_followed_to_unixfs_files() -> None:
    source, walker, entries = await _walk_car(GC / "trustless_gateway_car" / "dir-with-dag-cbor-with-links.car")
    try:
        kinds = {e.path: e.kind for e in entries}
        assert kinds["document"] == EntryKind.DOCUMENT
        linked = [e for e in entries if e.path.startswith("document/")]
        assert {e.kind for e in linked} == {EntryKind.FILE}
        assert b"hello world\n" in [await _content(walker, e) for e in linked]
    finally:
        source.close()


async def test_dag_json_document_links_are_followed() -> None:
    source, _walker, entries = await _walk_car(GC / "path_gateway_dag" / "dag-json-traversal.car")
    source.close()
    assert entries[0].kind == EntryKind.DOCUMENT and entries[0].codec == "dag-json"
    assert len(entries) == 3


async def test_path_resolution_through_a_hamt() -> None:
    source = await CarFileBlockSource.index(
        GC / "trustless_gateway_car" / "single-layer-hamt-with-multi-block-files.car"
    )
    walker = DagWalker(source)
    try:
        cid = await walker.resolve(source.header.roots[0], ["123.txt"])
        entries = [e async for e in walker.walk(cid, "123.txt")]
        assert len(entries) == 1 and entries[0].size == 1026
        with pytest.raises(DagError, match=r"no link named 'nope\.txt'"):
            await walker.resolve(source.header.roots[0], ["nope.txt"])
    finally:
        source.close()


async def test_mode_mtime_decoding_matches_boxo_fixture_values() -> None:
    _, blocks = await __import__("agent.ipfs.car", fromlist=["read_car_file"]).read_car_file(
        IPFS_FIXTURES / "extras" / "boxo-unixfs-dir-with-mode-mtime.car"
    )
    modes = {decode_unixfs(decode_pbnode(b.data).data or b"").mode for b in blocks}
    assert {0o755, 0o644, 0o700} <= modes


# --- deliberately broken DAGs -------------------------------------------------


async def test_a_cycle_of_links_is_detected_not_followed_forever() -> None:
    source = DictSource()
    # Two directories that name each other. Verified retrieval makes this
    # impossible, so the source here does not verify: the walker must cope anyway.
    a = cid_of(b"dir-a")
    b = cid_of(b"dir-b")
    source.put(a, pbnode([(b, "b", 1)], unixfs(1)))
    source.put(b, pbnode([(a, "a", 1)], unixfs(1)))
    entries = await _entries(DagWalker(source), str(a))
    assert len(entries) == 1
    assert isinstance(entries[0].error, DagCycle) and entries[0].path == "b/a"


async def test_a_file_whose_leaves_loop_back_is_an_error_not_a_hang() -> None:
    source = DictSource()
    f = cid_of(b"loop-file")
    source.put(f, pbnode([(f, "", 10)], unixfs(2, filesize=10, blocksizes=[10])))
    walker = DagWalker(source)
    (entry,) = [e async for e in walker.walk(f)]
    with pytest.raises(DagCycle):
        await _content(walker, entry)


async def test_garbage_protobuf_is_reported_and_siblings_still_walked() -> None:
    source = DictSource()
    garbage = cid_of(b"garbage")
    good = cid_of(b"hello", "raw")
    root = cid_of(b"root")
    source.put(garbage, b"\xff\xff\xff\xff\x0f\x00garbage")
    source.put(good, b"hello")
    source.put(root, pbnode([(garbage, "bad.bin", 1), (good, "good.txt", 5)], unixfs(1)))
    entries = await _entries(DagWalker(source), str(root))
    by_path = {e.path: e for e in entries}
    assert by_path["bad.bin"].kind == EntryKind.ERROR and "dag-pb" in str(by_path["bad.bin"].error)
    assert by_path["good.txt"].kind == EntryKind.FILE


async def test_dag_deeper_than_the_limit_stops_with_an_error() -> None:
    source = DictSource()
    leaf = cid_of(b"x", "raw")
    source.put(leaf, b"x")
    child = leaf
    for level in range(12):
        parent = cid_of(f"level-{level}".encode())
        source.put(parent, pbnode([(child, "d", 1)], unixfs(1)))
        child = parent
    entries = await _entries(DagWalker(source, max_depth=5), str(child))
    assert len(entries) == 1 and "deeper than 5" in str(entries[0].error)


async def test_item_count_limit_stops_enumeration() -> None:
    source = await CarFileBlockSource.index(
        GC / "trustless_gateway_car" / "single-layer-hamt-with-multi-block-files.car"
    )
    walker = DagWalker(source, max_items=10)
    seen: list[DagEntry] = []

    async def walk_all() -> None:
        async for entry in walker.walk(source.header.roots[0]):
            seen.append(entry)

    with pytest.raises(TooLarge, match="more than 10 items"):
        await walk_all()
    source.close()
    assert len(seen) == 10


async def test_file_whose_blocksizes_lie_is_an_error() -> None:
    source = DictSource()
    leaf = cid_of(b"12345", "raw")
    source.put(leaf, b"12345")
    f = cid_of(b"liar")
    source.put(f, pbnode([(leaf, "", 5)], unixfs(2, filesize=9, blocksizes=[9])))
    walker = DagWalker(source)
    (entry,) = [e async for e in walker.walk(f)]
    with pytest.raises(DagError, match="holds 5 bytes of file data, its parent says 9"):
        await _content(walker, entry)


async def test_file_over_the_item_limit_is_refused_before_any_leaf_is_read() -> None:
    source = DictSource()
    f = cid_of(b"huge")
    missing_leaf = cid_of(b"never fetched", "raw")
    source.put(
        f, pbnode([(missing_leaf, "", 10 * 1024**3)], unixfs(2, filesize=10 * 1024**3, blocksizes=[10 * 1024**3]))
    )
    walker = DagWalker(source)
    (entry,) = [e async for e in walker.walk(f)]
    assert entry.size == 10 * 1024**3
    with pytest.raises(TooLarge, match="10737418240 bytes"):
        await _content(walker, entry)


async def test_identity_cids_are_inlined_without_any_fetch() -> None:
    source = DictSource()  # empty: any fetch would fail
    entries = await _entries(DagWalker(source), "bafkqaaa")
    assert len(entries) == 1 and entries[0].kind == EntryKind.FILE and entries[0].size == 0
    empty_dir = await _entries(DagWalker(source), "bafyaabakaieac")
    assert empty_dir == []


def test_sha256_of_multiblock_fixture_is_known() -> None:
    # Guard for the integration tests: the fixture file content we expect.
    assert hashlib.sha256(b"hello world\n").hexdigest().startswith("a948904f2f0f")
