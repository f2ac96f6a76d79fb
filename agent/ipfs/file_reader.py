"""Reading one UnixFS file's bytes from its DAG, in order, block by block.

Bounded in bytes and in blocks (repeats included), and only while every node's
declared sizes agree with its links: a file cannot make its reader loop for
ever, nor promise one size and deliver another."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from agent.ipfs.blocks import BlockSession
from agent.ipfs.cid import CID, block_key, cid_text
from agent.ipfs.dagpb import DAG_PB, RAW, PBNode, UnixFSData, UnixFSType, decode_pbnode, decode_unixfs
from agent.ipfs.entries import DagEntry, inline_block, names_empty_block
from agent.ipfs.errors import DagCycle, DagError, TooLarge

__all__ = ["read_file"]


class _BlockBudget:
    """Blocks read for one file, repeats included: a file cannot make its reader loop
    over one small leaf for ever."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, cid: CID) -> None:
        self.used += 1
        if self.used > self.limit:
            raise TooLarge(
                f"file has more than {self.limit} blocks (limits.max_file_blocks); "
                f"stopped reading at block {cid_text(cid)}"
            )


async def read_file(
    entry: DagEntry,
    *,
    max_bytes: int,
    open_block: Callable[[CID], Awaitable[tuple[bytes, BlockSession | None]]],
    max_depth: int,
    max_file_blocks: int,
) -> AsyncIterator[bytes]:
    """The file's bytes in order, block by block; never more than `max_bytes`, never
    more than `max_file_blocks` blocks, and only while every node's declared sizes
    agree with its links."""
    if entry.size is not None and entry.size > max_bytes:
        raise TooLarge(f"file is {entry.size} bytes; the limit per item is {max_bytes}")
    block, session, opened = entry.root_block, entry.session, None
    if block is None:  # a repeated path: open the file afresh
        block, opened = await open_block(entry.cid)
        session = opened
        if opened is not None:
            entry.provenance = opened.provenance
    total = 0
    budget = _BlockBudget(max_file_blocks)
    try:
        async for chunk in _file_chunks(entry.cid, block, session, 0, frozenset(), entry.size, budget, max_depth):
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(f"file exceeds the limit per item of {max_bytes} bytes")
            yield chunk
    finally:
        if opened is not None:
            await opened.aclose()
    if entry.size is not None and total != entry.size:
        raise DagError(f"file declares {entry.size} bytes but its blocks hold {total}")


async def _file_chunks(
    cid: CID,
    block: bytes,
    session: BlockSession | None,
    depth: int,
    ancestors: frozenset[bytes],
    expected: int | None,
    budget: _BlockBudget,
    max_depth: int,
) -> AsyncIterator[bytes]:
    budget.take(cid)
    codec = cid.codec.code
    if codec != DAG_PB:
        yield block
        return
    if depth > max_depth:
        raise DagError(f"file DAG deeper than {max_depth} levels")
    key = block_key(cid)
    if key in ancestors:
        raise DagCycle(f"file block {cid_text(cid)} links back to its own ancestor")
    node = decode_pbnode(block)
    if node.data is None:
        raise DagError(f"file block {cid_text(cid)} has no UnixFS data")
    unixfs = decode_unixfs(node.data)
    if unixfs.type not in (UnixFSType.FILE, UnixFSType.RAW):
        raise DagError(f"block {cid_text(cid)} inside a file is a UnixFS {unixfs.type.name.lower()}")
    _check_declared_sizes(cid, node, unixfs, expected)  # also: as many blocksizes as links (zip strict)
    if unixfs.data:
        yield unixfs.data
    prefetch = getattr(session, "prefetch", None)
    if prefetch is not None:  # raw-block sessions fetch a window of siblings ahead
        prefetch(
            [
                link.cid
                for link, size in zip(node.links, unixfs.blocksizes, strict=True)
                if not _known_without_fetch(link.cid, size)
            ]
        )
    for link, size in zip(node.links, unixfs.blocksizes, strict=True):
        child = inline_block(link.cid)
        if child is None and _known_without_fetch(link.cid, size):
            child = b""
        if child is None:
            if session is None:
                raise DagError("file continues below an inline block")
            child = await session.get(link.cid)
        produced = 0
        async for chunk in _file_chunks(
            link.cid, child, session, depth + 1, ancestors | {key}, size, budget, max_depth
        ):
            produced += len(chunk)
            yield chunk
        if produced != size:
            raise DagError(f"block {cid_text(link.cid)} holds {produced} bytes of file data, its parent says {size}")


def _known_without_fetch(cid: CID, size: int) -> bool:
    """A raw leaf of zero bytes whose CID is the hash of nothing: verified here, never fetched."""
    return size == 0 and cid.codec.code == RAW and names_empty_block(cid)


def _check_declared_sizes(cid: CID, node: PBNode, unixfs: UnixFSData, expected: int | None) -> None:
    """Refuse a file node whose sizes disagree, before any block below it is read."""
    if node.links and len(unixfs.blocksizes) != len(node.links):
        raise DagError(
            f"file block {cid_text(cid)} has {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes"
        )
    if not node.links and unixfs.blocksizes:
        raise DagError(f"file block {cid_text(cid)} has {len(unixfs.blocksizes)} blocksizes but no links")
    holds = len(unixfs.data or b"") + sum(unixfs.blocksizes)
    if unixfs.filesize is not None and unixfs.filesize != holds:
        raise DagError(
            f"file block {cid_text(cid)} declares a filesize of {unixfs.filesize} bytes but its data and "
            f"blocksizes add up to {holds}"
        )
    if expected is not None and holds != expected:
        raise DagError(
            f"file block {cid_text(cid)} holds {holds} bytes of file data by its own blocksizes, "
            f"its parent says {expected}"
        )
