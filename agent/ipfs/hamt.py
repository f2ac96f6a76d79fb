"""HAMT-sharded UnixFS directories (spec: UnixFS HAMTDirectory), as part of a walk.

A mixin of agent.ipfs.dag.DagWalker: reading a HAMT needs the walk's budgets
and records (nodes visited, items yielded, walked nodes), which live on the
walker; the mixin declares exactly the part of the walker it uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from agent.ipfs.blocks import BlockSession, Provenance
from agent.ipfs.cid import CID, block_key
from agent.ipfs.dagpb import PBNode, UnixFSData, UnixFSType, decode_pbnode, decode_unixfs
from agent.ipfs.entries import DagEntry, EntryKind, WalkBudgetExceeded, WalkedNode, inline_block
from agent.ipfs.errors import DagError, IpfsError

__all__ = ["HamtWalk"]

# HAMT directories nested inside each other each keep their session (a CAR
# stream, a connection) open while their entries are walked; beyond this many at
# once, a HAMT's entries are read whole first (counted against the node budget)
# so a crafted nesting cannot exhaust the connection pool.
_MAX_OPEN_HAMTS = 8


class HamtWalk:
    """The HAMT part of a DAG walk."""

    # Set by DagWalker.__init__.
    _max_depth: int
    _max_nodes: int
    _before_fetch: Callable[[CID, str], Awaitable[EntryKind | None]] | None
    _open_hamts: int
    nodes_visited: int
    items_yielded: int
    walked_nodes: list[WalkedNode]

    def _visit_link(
        self, path: str, name: str, child: CID, depth: int, ancestors: frozenset[bytes]
    ) -> AsyncIterator[DagEntry]:
        raise NotImplementedError  # DagWalker walks what a HAMT entry links to

    def _count_node(self) -> None:
        self.nodes_visited += 1
        if self.nodes_visited > self._max_nodes:
            raise WalkBudgetExceeded(
                f"more than {self._max_nodes} DAG nodes visited (limits.max_dag_nodes); stopped walking"
            )

    async def _visit_hamt(
        self,
        cid: CID,
        node: PBNode,
        unixfs: UnixFSData,
        session: BlockSession | None,
        path: str,
        depth: int,
        ancestors: frozenset[bytes],
        provenance: Provenance,
    ) -> AsyncIterator[DagEntry]:
        """A HAMT directory's entries, each walked as soon as its shard is read (never
        all collected first), unless too many HAMT sessions are open already. Closes
        `session` once the shards are read, whatever happens."""
        streaming = self._open_hamts < _MAX_OPEN_HAMTS
        links = self._hamt_links(node, unixfs, session, 0, set(), walking=streaming)
        if streaming:
            self._open_hamts += 1
        try:
            collected: list[tuple[str, CID]] = []
            while True:
                try:
                    link = await anext(links)  # each entry counted against the node budget as it is read
                except StopAsyncIteration:
                    break
                except WalkBudgetExceeded:
                    raise
                except IpfsError as exc:
                    yield DagEntry(path, cid, EntryKind.ERROR, codec="dag-pb", error=exc, provenance=provenance)
                    return
                if not streaming:
                    collected.append(link)
                    continue
                async for entry in self._visit_link(path, link[0], link[1], depth, ancestors):
                    yield entry
        finally:
            if streaming:
                self._open_hamts -= 1
            await links.aclose()
            if session is not None:
                await session.aclose()
        for name, child in collected:
            async for entry in self._visit_link(path, name, child, depth, ancestors):
                yield entry

    async def _hamt_links(
        self,
        node: PBNode,
        unixfs: UnixFSData,
        session: BlockSession | None,
        depth: int,
        seen: set[bytes],
        *,
        walking: bool = False,
    ) -> AsyncGenerator[tuple[str, CID], None]:
        """Entries of a HAMT-sharded directory, in link order (spec: UnixFS HAMTDirectory).

        Each link counts against the node budget; a sub-shard repeated within the
        HAMT (`seen`) is read once. When `walking`, sub-shards the caller examined
        before are skipped, and each sub-shard read to its end is recorded."""
        if unixfs.hash_type != 0x22:
            raise DagError(f"HAMT hash function 0x{unixfs.hash_type or 0:x} is not murmur3-x64-64")
        fanout = unixfs.fanout or 0
        if fanout < 2 or fanout > 1024 or fanout & (fanout - 1):
            raise DagError(f"HAMT fanout {fanout} is not a power of two in [2, 1024]")
        if depth > self._max_depth:
            raise DagError(f"HAMT deeper than {self._max_depth} levels")
        pad = len(format(fanout - 1, "X"))
        for link in node.links:
            name = link.name or ""
            if len(name) < pad:
                raise DagError(f"HAMT link name {name!r} shorter than its {pad}-character prefix")
            if len(name) > pad:
                yield name[pad:], link.cid  # the entry is counted when it is visited
                continue
            self._count_node()
            shard_key = block_key(link.cid)
            if shard_key in seen:
                continue  # no valid HAMT repeats a shard; its entries were given once
            seen.add(shard_key)
            if walking and self._before_fetch is not None and await self._before_fetch(link.cid, "") == EntryKind.KNOWN:
                continue
            block = inline_block(link.cid)
            if block is None:
                if session is None:
                    raise DagError("HAMT shard below an inline block")
                block = await session.get(link.cid)
            child = decode_pbnode(block)
            child_fs = decode_unixfs(child.data) if child.data is not None else None
            if child_fs is None or child_fs.type != UnixFSType.HAMT_SHARD:
                raise DagError(f"HAMT link {name!r} points at something that is not a shard")
            first = self.items_yielded
            async for item in self._hamt_links(child, child_fs, session, depth + 1, seen, walking=walking):
                yield item
            if walking:
                self.walked_nodes.append(WalkedNode(link.cid, first, self.items_yielded, shard=True))
