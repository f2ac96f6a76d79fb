"""Walk a DAG from a root: enumerate the files below it and stream their bytes.

Understands UnixFS (files with raw or dag-pb leaves, directories, HAMT-sharded
directories, symlinks) and follows the links of dag-cbor / dag-json documents.
Every path component is checked so that no link name can leave the root, and
depth, item count, nodes visited, blocks per file and bytes are bounded. A
directory (or document, or HAMT sub-shard) reached again under another path is
walked once: a hostile DAG of directories sharing children costs one visit per
distinct node, not one per path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from agent.ipfs.blocks import BlockSession, BlockSource, Provenance
from agent.ipfs.cid import CID, block_key
from agent.ipfs.dagpb import DAG_PB, RAW, UnixFSData, UnixFSType, decode_pbnode, decode_unixfs

# The walk's public names stay importable from here: entries, paths,
# documents and file reading each have their module.
from agent.ipfs.documents import DOCUMENT_CODECS, decode_document, document_link_segments
from agent.ipfs.entries import DagEntry, EntryKind, WalkedNode, facts, inline_block
from agent.ipfs.errors import DagCycle, DagError, IpfsError, PathEscape, TooLarge
from agent.ipfs.file_reader import read_file
from agent.ipfs.hamt import HamtWalk
from agent.ipfs.paths import check_link_name, join, safe_join, safe_join_all

__all__ = [
    "DagWalker",
]


def _pb_file_size(u: UnixFSData) -> int:
    if u.filesize is not None:
        return u.filesize
    return len(u.data or b"") + sum(u.blocksizes)


class DagWalker(HamtWalk):
    def __init__(
        self,
        source: BlockSource,
        *,
        max_depth: int = 256,
        max_items: int = 100_000,
        max_nodes: int = 1_000_000,
        max_file_blocks: int = 1_000_000,
        before_fetch: Callable[[CID, str], Awaitable[EntryKind | None]] | None = None,
    ) -> None:
        self._source = source
        # Asked before any link is followed: WITHHELD or KNOWN means report the
        # link as such and fetch nothing at or below it; None means go on.
        self._before_fetch = before_fetch
        self._max_depth = max_depth
        self._max_items = max_items
        self._max_nodes = max_nodes
        self._max_file_blocks = max_file_blocks
        self.items_yielded = 0
        # Every link followed (files, directories, documents, HAMT shards, repeats
        # and refusals included) counts against `max_nodes`.
        self.nodes_visited = 0
        # File roots already seen in this walk: a second path to the same CID is
        # reported without fetching its root again (directories share files often).
        # Only what a repeat needs is kept, not the entry: its root block would stay in memory.
        self._known_files: dict[bytes, DagEntry] = {}
        # Directories and documents already walked, with their first path and kind.
        self._walked: dict[bytes, tuple[str, EntryKind]] = {}
        # Directories, documents and HAMT sub-shards walked to their end, in the order they ended.
        self.walked_nodes: list[WalkedNode] = []
        self._open_hamts = 0

    async def _open(self, cid: CID) -> tuple[bytes, BlockSession | None]:
        inline = inline_block(cid)
        if inline is not None:
            return inline, None
        return await self._source.open(cid)

    async def resolve(self, root: CID, segments: list[str]) -> CID:
        """Follow a path of names from `root` (UnixFS directories, HAMTs, document keys)."""
        cid = root
        for depth, name in enumerate(segments):
            if depth >= self._max_depth:
                raise DagError(f"path deeper than {self._max_depth}")
            check_link_name(name)
            block, session = await self._open(cid)
            try:
                cid = await self._child(cid, block, session, name)
            finally:
                if session is not None:
                    await session.aclose()
        return cid

    async def _child(self, cid: CID, block: bytes, session: BlockSession | None, name: str) -> CID:
        codec = cid.codec.code
        if codec == DAG_PB:
            node = decode_pbnode(block)
            unixfs = decode_unixfs(node.data) if node.data is not None else None
            if unixfs is not None and unixfs.type == UnixFSType.HAMT_SHARD:
                async for entry_name, child in self._hamt_links(node, unixfs, session, 0, set()):
                    if entry_name == name:
                        return child
            elif unixfs is None or unixfs.type == UnixFSType.DIRECTORY:
                for link in node.links:
                    if link.name == name:
                        return link.cid
            else:
                raise DagError(f"{cid} is a UnixFS {unixfs.type.name.lower()}, not a directory")
        elif codec in DOCUMENT_CODECS:
            value = decode_document(codec, block)
            if isinstance(value, dict) and name in value:
                target = value[name]
                if isinstance(target, CID):
                    return target
        raise DagError(f"no link named {name!r} under {cid}")

    async def walk(self, root: CID, path: str = "") -> AsyncIterator[DagEntry]:
        """Depth-first, in link order: the order a trustless gateway streams a CAR."""
        async for entry in self._visit(root, path, 0, frozenset()):
            self.items_yielded += 1
            if self.items_yielded > self._max_items:
                await entry.release()
                raise TooLarge(f"more than {self._max_items} items under {root}; stopped enumerating")
            yield entry

    async def _visit(self, cid: CID, path: str, depth: int, ancestors: frozenset[bytes]) -> AsyncIterator[DagEntry]:
        key = block_key(cid)
        self._count_node()
        if depth > self._max_depth:
            yield DagEntry(path, cid, EntryKind.ERROR, error=DagError(f"DAG deeper than {self._max_depth} levels"))
            return
        if key in ancestors:
            yield DagEntry(path, cid, EntryKind.ERROR, error=DagCycle(f"link to {cid} leads back to its own ancestor"))
            return
        if self._before_fetch is not None:
            verdict = await self._before_fetch(cid, path)
            if verdict is not None:
                yield DagEntry(path, cid, verdict, codec=cid.codec.name)
                return
        known = self._known_files.get(key)
        if known is not None:
            yield DagEntry(
                path, cid, EntryKind.FILE, size=known.size, mode=known.mode, mtime=known.mtime, codec=known.codec
            )
            return
        walked = self._walked.get(key)
        if walked is not None:
            yield DagEntry(path, cid, walked[1], codec=cid.codec.name, duplicate_of=walked[0])
            return
        try:
            block, session = await self._open(cid)
        except IpfsError as exc:
            failed = exc.provenance if isinstance(exc.provenance, Provenance) else Provenance()
            yield DagEntry(path, cid, EntryKind.ERROR, codec=cid.codec.name, error=exc, provenance=failed)
            return
        provenance = session.provenance if session is not None else Provenance()
        keep_session = False
        try:
            codec = cid.codec.code
            if codec == RAW:
                keep_session = True
                entry = DagEntry(
                    path,
                    cid,
                    EntryKind.FILE,
                    size=len(block),
                    codec="raw",
                    provenance=provenance,
                    root_block=block,
                    session=session,
                )
                self._known_files[key] = facts(entry)
                yield entry
                return
            if codec in DOCUMENT_CODECS:
                self._walked[key] = (path, EntryKind.DOCUMENT)
                first = self.items_yielded
                async for entry in self._visit_document(cid, block, path, depth, ancestors | {key}, provenance):
                    yield entry
                self.walked_nodes.append(WalkedNode(cid, first, self.items_yielded))
                return
            if codec != DAG_PB:
                yield DagEntry(
                    path,
                    cid,
                    EntryKind.FILE,
                    size=len(block),
                    codec=cid.codec.name,
                    provenance=provenance,
                    root_block=block,
                )
                return
            try:
                node = decode_pbnode(block)
                unixfs = decode_unixfs(node.data) if node.data is not None else None
            except DagError as exc:
                yield DagEntry(path, cid, EntryKind.ERROR, codec="dag-pb", error=exc, provenance=provenance)
                return
            mtime = unixfs.mtime.seconds + unixfs.mtime.nanos / 1e9 if unixfs and unixfs.mtime else None
            mode = unixfs.mode if unixfs else None
            if unixfs is not None and unixfs.type in (UnixFSType.FILE, UnixFSType.RAW):
                keep_session = True
                entry = DagEntry(
                    path,
                    cid,
                    EntryKind.FILE,
                    size=_pb_file_size(unixfs),
                    mode=mode,
                    mtime=mtime,
                    codec="dag-pb",
                    provenance=provenance,
                    root_block=block,
                    session=session,
                )
                self._known_files[key] = facts(entry)
                yield entry
                return
            if unixfs is not None and unixfs.type == UnixFSType.SYMLINK:
                target = (unixfs.data or b"").decode("utf-8", errors="replace")
                yield DagEntry(
                    path,
                    cid,
                    EntryKind.SYMLINK,
                    size=len(unixfs.data or b""),
                    mode=mode,
                    mtime=mtime,
                    symlink_target=target,
                    codec="dag-pb",
                    provenance=provenance,
                )
                return
            if unixfs is not None and unixfs.type == UnixFSType.HAMT_SHARD:
                self._walked[key] = (path, EntryKind.DIRECTORY)
                first = self.items_yielded
                keep_session = True  # _visit_hamt closes it, as early as it can
                async for entry in self._visit_hamt(
                    cid, node, unixfs, session, path, depth, ancestors | {key}, provenance
                ):
                    yield entry
                self.walked_nodes.append(WalkedNode(cid, first, self.items_yielded))
                return
            if unixfs is not None and unixfs.type != UnixFSType.DIRECTORY:
                yield DagEntry(
                    path,
                    cid,
                    EntryKind.ERROR,
                    codec="dag-pb",
                    provenance=provenance,
                    error=DagError(f"UnixFS {unixfs.type.name} nodes are not supported"),
                )
                return
            self._walked[key] = (path, EntryKind.DIRECTORY)
            if session is not None:  # the directory is read: free its connection before descending
                await session.aclose()
                keep_session = True
            first = self.items_yielded
            for link in node.links:
                async for entry in self._visit_link(path, link.name or "", link.cid, depth, ancestors | {key}):
                    yield entry
            self.walked_nodes.append(WalkedNode(cid, first, self.items_yielded))
        finally:
            if not keep_session and session is not None:
                await session.aclose()

    async def _visit_link(
        self, path: str, name: str, child: CID, depth: int, ancestors: frozenset[bytes]
    ) -> AsyncIterator[DagEntry]:
        try:
            child_path = safe_join(path, name)
        except PathEscape as exc:
            self._count_node()
            yield DagEntry(join(path, name), child, EntryKind.ERROR, error=exc)
            return
        async for entry in self._visit(child, child_path, depth + 1, ancestors):
            yield entry

    async def _visit_document(
        self, cid: CID, block: bytes, path: str, depth: int, ancestors: frozenset[bytes], provenance: Provenance
    ) -> AsyncIterator[DagEntry]:
        codec = cid.codec.code
        entry = DagEntry(
            path,
            cid,
            EntryKind.DOCUMENT,
            size=len(block),
            codec=cid.codec.name,
            provenance=provenance,
            root_block=block,
        )
        try:
            links = list(document_link_segments(decode_document(codec, block)))
        except DagError as exc:
            entry.error = exc
            yield entry
            return
        yield entry
        for segments, child in links:
            # Map keys become paths: confined to the root exactly as dag-pb link names are.
            try:
                child_path = safe_join_all(path, segments)
            except PathEscape as exc:
                self._count_node()
                yield DagEntry("/".join((path, *segments) if path else segments), child, EntryKind.ERROR, error=exc)
                continue
            async for found in self._visit(child, child_path, depth + 1, ancestors):
                yield found

    async def read_file(self, entry: DagEntry, *, max_bytes: int) -> AsyncIterator[bytes]:
        """The file's bytes in order, block by block; never more than `max_bytes`, never
        more than `max_file_blocks` blocks, and only while every node's declared sizes
        agree with its links (agent.ipfs.file_reader)."""
        async for chunk in read_file(
            entry,
            max_bytes=max_bytes,
            open_block=self._open,
            max_depth=self._max_depth,
            max_file_blocks=self._max_file_blocks,
        ):
            yield chunk
