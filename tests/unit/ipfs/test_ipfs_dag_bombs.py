"""DAGs crafted to make a walker explode: shared directories, repeating HAMT shards,
files that lie about their size, document keys that leave the root, empty leaves.
Each walk is bounded here by a CountingSource guard, so old unbounded code fails
fast instead of hanging."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import dag_cbor
import pytest
from multiformats import CID

from agent.ipfs.cid import block_key
from agent.ipfs.dag import DagWalker
from agent.ipfs.entries import DagEntry, EntryKind, WalkBudgetExceeded
from agent.ipfs.errors import DagError, PathEscape, TooLarge
from tests.support.dagpb import (
    Blocks,
    CountingSource,
    block,
    cid_of,
    file_node,
    hamt_bomb,
    hamt_shard,
    pbnode,
    shared_directory_bomb,
    unixfs,
)


async def _drain(entries: AsyncIterator[DagEntry], seen: list[DagEntry]) -> None:
    """Walk to the end (or the error), releasing each entry; `seen` collects them."""
    async for entry in entries:
        await entry.release()
        seen.append(entry)


def source_of(blocks: Blocks, guard: int = 10_000) -> CountingSource:
    source = CountingSource(guard=guard)
    for cid, data in blocks:
        source.put(cid, data)
    return source


async def entries_of(walker: DagWalker, root: CID) -> list[DagEntry]:
    """Every entry, sessions kept open for `read` (the test sessions hold nothing)."""
    return [e async for e in walker.walk(root)]


async def read(walker: DagWalker, entry: DagEntry, max_bytes: int = 1 << 20) -> bytes:
    return b"".join([c async for c in walker.read_file(entry, max_bytes=max_bytes)])


# --- item 3: directories sharing children ------------------------------------------


async def test_directories_sharing_a_child_are_each_walked_once_and_repeats_reported() -> None:
    levels = 40  # 2**40 paths: a walk per path never ends
    root, blocks = shared_directory_bomb(levels)
    source = source_of(blocks)
    walker = DagWalker(source)
    entries = await entries_of(walker, root)
    assert source.served == levels + 1, "each distinct directory block is read once"
    # At each level "a" is walked and "b" is reported as a repeat of it.
    assert len(entries) == levels
    assert all(e.kind == EntryKind.DIRECTORY for e in entries)
    assert entries[0].path == "a/" * (levels - 1) + "b" and entries[0].duplicate_of == "a/" * (levels - 1) + "a"
    assert entries[-1].path == "b" and entries[-1].duplicate_of == "a"
    assert walker.nodes_visited == 2 * levels + 1


async def test_a_shared_file_at_the_bottom_is_read_once_under_its_first_path() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"payload", "raw")
    root, more = shared_directory_bomb(30, (leaf, 7))
    source = source_of(blocks + more)
    entries = await entries_of(DagWalker(source), root)
    files = [e for e in entries if e.kind == EntryKind.FILE]
    assert [f.path for f in files] == ["a/" * 29 + "a", "a/" * 29 + "b"]  # the deepest directory's two links
    assert source.served == 30 + 1  # thirty directories and the leaf


async def test_the_node_budget_stops_a_walk_with_a_clear_error() -> None:
    blocks: Blocks = []
    files = {f"f{i}": (block(blocks, f"file {i}".encode(), "raw"), 6) for i in range(50)}
    root = block(blocks, pbnode([(c, n, s) for n, (c, s) in sorted(files.items())], unixfs(1)))
    walker = DagWalker(source_of(blocks), max_nodes=20)
    seen: list[DagEntry] = []
    with pytest.raises(WalkBudgetExceeded, match=r"more than 20 DAG nodes visited \(limits.max_dag_nodes\)"):
        await _drain(walker.walk(root), seen)
    assert len(seen) == 19 and walker.nodes_visited == 21


# --- item 4: HAMT shards repeating one sub-shard --------------------------------------


async def test_a_hamt_whose_shards_repeat_one_sub_shard_is_walked_once_in_bounded_memory() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    # 256**3 = 16.7 million paths to the bottom shard's 64 entries.
    root, more = hamt_bomb(3, [(f"e{i:03}.txt", leaf) for i in range(64)])
    source = source_of(blocks + more, guard=1_000)
    walker = DagWalker(source)
    tracemalloc.start()
    try:
        names = []
        async for entry in walker.walk(root):
            names.append(entry.path)
            await entry.release()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert names == [f"e{i:03}.txt" for i in range(64)]
    assert source.served == 4 + 1, "four distinct shards and one leaf"
    assert walker.nodes_visited == 3 * 256 + 1 + 64
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


async def test_hamt_entries_are_walked_as_their_shard_is_read_not_after_all_shards() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    first = block(blocks, hamt_shard([(leaf, "00a.txt", 1)]))
    second = block(blocks, hamt_shard([(leaf, "00b.txt", 1)]))
    root = block(blocks, hamt_shard([(first, "00", 1), (second, "01", 1)]))
    source = source_of(blocks)
    walker = DagWalker(source)
    entries = walker.walk(root)
    entry = await anext(entries)
    assert entry.path == "a.txt"
    assert source.served == 3, "root shard, first sub-shard, the entry: the second sub-shard is not read yet"
    await entry.release()
    rest = [e async for e in entries]
    assert [e.path for e in rest] == ["b.txt"]


async def test_hamt_entries_count_against_the_node_budget() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    root = block(blocks, hamt_shard([(leaf, f"00n{i:04}", 1) for i in range(1000)]))
    walker = DagWalker(source_of(blocks), max_nodes=100)
    with pytest.raises(WalkBudgetExceeded, match="more than 100 DAG nodes"):
        await _drain(walker.walk(root), [])
    assert walker.nodes_visited == 101


async def test_nested_hamt_directories_keep_a_bounded_number_of_sessions_open() -> None:
    from agent.ipfs.hamt import _MAX_OPEN_HAMTS

    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    inner = block(blocks, hamt_shard([(leaf, "00file", 1)]))
    for level in range(3 * _MAX_OPEN_HAMTS):  # each HAMT holds the next one and a file
        inner = block(blocks, hamt_shard([(inner, "00d", 1), (leaf, f"01f{level}", 1)]))
    source = source_of(blocks)
    walker = DagWalker(source)
    paths = []
    async for entry in walker.walk(inner):
        paths.append(entry.path)
        await entry.release()
    assert len(paths) == 3 * _MAX_OPEN_HAMTS + 1 and paths[0] == "d/" * (3 * _MAX_OPEN_HAMTS) + "file"
    assert source.most_open <= _MAX_OPEN_HAMTS + 1, "HAMTs nested deeper are read whole, their session closed"
    assert source.open_sessions == 0


# --- item 5: files that lie about their size ------------------------------------------


def _liar(root_filesize: int, via_parent: bool) -> tuple[CID, Blocks]:
    """A file whose links repeat one 1-byte leaf 9x10^8 times while it declares `root_filesize`."""
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    n1 = block(blocks, file_node([(leaf, 1)] * 1000))
    n2 = block(blocks, file_node([(n1, 1000)] * 1000))
    if via_parent:  # an honest-looking root of 10 bytes over a node that holds 9x10^8
        n3 = block(blocks, file_node([(n2, 1_000_000)] * 900))
        return block(blocks, file_node([(n3, root_filesize)])), blocks
    return block(blocks, file_node([(n2, 1_000_000)] * 900, filesize=root_filesize)), blocks


@pytest.mark.parametrize(
    ("via_parent", "message"),
    [
        (False, r"declares a filesize of 10 bytes but its data and blocksizes add up to 900000000"),
        (True, r"holds 900000000 bytes of file data by its own blocksizes, its parent says 10"),
    ],
)
async def test_a_file_declaring_10_bytes_over_9e8_leaf_repeats_is_refused_before_reading(
    via_parent: bool, message: str
) -> None:
    root, blocks = _liar(10, via_parent)
    source = source_of(blocks)
    walker = DagWalker(source)
    (entry,) = await entries_of(walker, root)
    assert entry.size == 10
    served = source.served
    with pytest.raises(DagError, match=message):
        await read(walker, entry, max_bytes=100)
    assert source.served - served <= 1, "refused on the declared sizes, before any leaf"


async def test_blocks_per_file_are_capped_even_when_every_size_agrees() -> None:
    blocks: Blocks = []
    empty = block(blocks, b"", "raw")
    m1 = block(blocks, file_node([(empty, 0)] * 1000))
    m2 = block(blocks, file_node([(m1, 0)] * 1000))
    root = block(blocks, file_node([(m2, 0)] * 1000))  # 0 bytes in 10^9 blocks
    source = source_of(blocks)
    walker = DagWalker(source, max_file_blocks=5_000)
    (entry,) = await entries_of(walker, root)
    with pytest.raises(TooLarge, match=r"more than 5000 blocks \(limits.max_file_blocks\)"):
        await read(walker, entry)


async def test_an_honest_multi_level_file_still_reads_whole() -> None:
    blocks: Blocks = []
    leaves = [(block(blocks, bytes([65 + i]) * 10, "raw"), 10) for i in range(6)]
    mid = [(block(blocks, file_node(leaves[i : i + 3])), 30) for i in (0, 3)]
    root = block(blocks, file_node(mid))
    walker = DagWalker(source_of(blocks))
    (entry,) = await entries_of(walker, root)
    assert await read(walker, entry) == b"".join(bytes([65 + i]) * 10 for i in range(6))


# --- item 10: document keys are confined like dag-pb names ----------------------------


async def test_dag_cbor_map_keys_that_leave_the_root_are_refused_like_dag_pb_names() -> None:
    blocks: Blocks = []
    secret = block(blocks, b"not yours", "raw")
    fine = block(blocks, b"fine", "raw")
    doc = block(
        blocks, dag_cbor.encode({"../../../etc/passwd": secret, "a/../b": fine, "sub": {"..": fine}}), "dag-cbor"
    )
    root = block(blocks, pbnode([(doc, "doc", 1)], unixfs(1)))
    entries = await entries_of(DagWalker(source_of(blocks)), root)
    by_path = {e.path: e for e in entries}
    escape = by_path["doc/../../../etc/passwd"]
    assert escape.kind == EntryKind.ERROR and isinstance(escape.error, PathEscape)
    assert by_path["doc/b"].kind == EntryKind.FILE  # `..` inside the root is normalised, as for dag-pb
    assert isinstance(by_path["doc/sub/.."].error, PathEscape)
    assert not any(e.kind == EntryKind.FILE and ".." in e.path for e in entries)
    assert by_path["doc"].kind == EntryKind.DOCUMENT


async def test_a_document_linked_many_times_is_walked_once() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"leaf", "raw")
    inner = block(blocks, dag_cbor.encode({"x": leaf}), "dag-cbor")
    outer = block(blocks, dag_cbor.encode({"l": [inner] * 500}), "dag-cbor")
    source = source_of(blocks)
    entries = await entries_of(DagWalker(source), outer)
    documents = [e for e in entries if e.kind == EntryKind.DOCUMENT]
    assert len(documents) == 501 and sum(e.duplicate_of is not None for e in documents) == 499
    assert source.served == 3


# --- item 12: empty leaves --------------------------------------------------------


async def test_an_empty_leaf_repeated_2000_times_is_never_fetched() -> None:
    blocks: Blocks = []
    empty = block(blocks, b"", "raw")
    hello = block(blocks, b"hello", "raw")
    root = block(blocks, file_node([(hello, 5)] + [(empty, 0)] * 2000))
    source = source_of(blocks)
    walker = DagWalker(source)
    (entry,) = await entries_of(walker, root)
    assert await read(walker, entry) == b"hello"
    assert source.served == 2, "the root and the non-empty leaf; an empty block is verified without a fetch"


async def test_a_leaf_of_wrong_size_zero_is_still_fetched_and_refused() -> None:
    blocks: Blocks = []
    notempty = block(blocks, b"surprise", "raw")
    root = block(blocks, pbnode([(notempty, "", 0)], unixfs(2, filesize=0, blocksizes=[0])))
    walker = DagWalker(source_of(blocks))
    (entry,) = await entries_of(walker, root)
    with pytest.raises(DagError, match="holds 8 bytes of file data, its parent says 0"):
        await read(walker, entry)


def test_cid_of_empty_raw_block_is_the_well_known_one() -> None:
    assert str(cid_of(b"", "raw")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


# --- issue 8 item 20: what the walker tells its caller about walked directories -------


async def test_walked_nodes_span_exactly_the_entries_below_them() -> None:
    blocks: Blocks = []
    f1, f2, f3 = (block(blocks, n, "raw") for n in (b"1", b"2", b"3"))
    sub = block(blocks, pbnode([(f2, "two", 1), (f3, "three", 1)], unixfs(1)))
    root = block(blocks, pbnode([(f1, "one", 1), (sub, "sub", 3)], unixfs(1)))
    walker = DagWalker(source_of(blocks))
    entries = await entries_of(walker, root)
    assert [e.path for e in entries] == ["one", "sub/two", "sub/three"]
    assert [(block_key(n.cid), n.first, n.end) for n in walker.walked_nodes] == [
        (block_key(sub), 1, 3),
        (block_key(root), 0, 3),
    ]


async def test_a_hamt_sub_shard_the_caller_knows_is_not_read() -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    known = block(blocks, hamt_shard([(leaf, "00old.txt", 1)]))
    fresh = block(blocks, hamt_shard([(leaf, "00new.txt", 1)]))
    root = block(blocks, hamt_shard([(known, "00", 1), (fresh, "01", 1)]))
    source = source_of(blocks)

    async def before_fetch(cid: CID, path: str) -> EntryKind | None:
        return EntryKind.KNOWN if block_key(cid) == block_key(known) else None

    walker = DagWalker(source, before_fetch=before_fetch)
    entries = await entries_of(walker, root)
    assert [e.path for e in entries] == ["new.txt"]
    assert source.served == 3, "root shard, the new sub-shard, the leaf"
    assert [(block_key(n.cid), n.shard) for n in walker.walked_nodes] == [
        (block_key(fresh), True),
        (block_key(root), False),
    ]
