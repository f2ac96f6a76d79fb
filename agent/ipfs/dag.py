"""Walk a DAG from a root: enumerate the files below it and stream their bytes.

Understands UnixFS (files with raw or dag-pb leaves, directories, HAMT-sharded
directories, symlinks) and follows the links of dag-cbor / dag-json documents.
Every path component is checked so that no link name can leave the root, and
depth, item count, nodes visited, blocks per file and bytes are bounded. A
directory (or document, or HAMT sub-shard) reached again under another path is
walked once: a hostile DAG of directories sharing children costs one visit per
distinct node, not one per path."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import dag_cbor

from agent.ipfs.blocks import BlockSession, BlockSource, Provenance
from agent.ipfs.cid import CID, block_key, check_cid, cid_text, parse_cid
from agent.ipfs.dagpb import (
    DAG_CBOR,
    DAG_JSON,
    DAG_PB,
    RAW,
    PBNode,
    UnixFSData,
    UnixFSType,
    decode_pbnode,
    decode_unixfs,
)
from agent.ipfs.errors import DagCycle, DagError, InvalidCid, IpfsError, PathEscape, TooLarge
from agent.ipfs.multihash import IDENTITY_CODE, split_multihash, verify_block

CBOR = 0x51
JSON = 0x0200
_DOCUMENT_CODECS = {
    DAG_CBOR: "application/vnd.ipld.dag-cbor",
    DAG_JSON: "application/vnd.ipld.dag-json",
    CBOR: "application/cbor",
    JSON: "application/json",
}
_MAX_DOCUMENT_LINKS = 10_000
# HAMT directories nested inside each other each keep their session (a CAR
# stream, a connection) open while their entries are walked; beyond this many at
# once, a HAMT's entries are read whole first (counted against the node budget)
# so a crafted nesting cannot exhaust the connection pool.
_MAX_OPEN_HAMTS = 8


class EntryKind(StrEnum):
    WITHHELD = "withheld"  # the caller's policy said not to fetch it (a denylisted CID or path)
    KNOWN = "known"  # the caller examined this CID before (an earlier scan): not fetched again
    FILE = "file"
    SYMLINK = "symlink"
    DOCUMENT = "document"
    # Yielded only for a directory met again under another path (`duplicate_of`
    # names the first): its entries are reported once, under the first path.
    DIRECTORY = "directory"
    ERROR = "error"


class WalkBudgetExceeded(TooLarge):
    """More DAG nodes than the walk budget allows: the walk stops (it is not one item's error)."""


@dataclass
class DagEntry:
    """One thing found under the root. Files keep their open session until read."""

    path: str
    cid: CID
    kind: EntryKind
    size: int | None = None
    mode: int | None = None
    mtime: float | None = None
    symlink_target: str | None = None
    codec: str = ""
    error: IpfsError | None = None
    provenance: Provenance = field(default_factory=Provenance)
    root_block: bytes | None = field(default=None, repr=False)
    session: BlockSession | None = field(default=None, repr=False)
    # A directory or document already walked under this earlier path: not walked again.
    duplicate_of: str | None = None

    async def release(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.aclose()


@dataclass(frozen=True, slots=True)
class WalkedNode:
    """A directory, document or HAMT sub-shard walked to its end. The entries found
    below it are exactly those the walk yielded at indexes [first, end), so a
    caller can tell whether everything under it was examined."""

    cid: CID
    first: int
    end: int
    shard: bool = False


def _facts(entry: DagEntry) -> DagEntry:
    """A file entry without its block or session: what a repeated path reports."""
    return DagEntry(
        entry.path, entry.cid, entry.kind, size=entry.size, mode=entry.mode, mtime=entry.mtime, codec=entry.codec
    )


def inline_block(cid: CID) -> bytes | None:
    """An identity CID carries its block; nothing to fetch or verify.

    The CID still meets the rules every other CID meets (an identity digest of at
    most 128 bytes, an IPLD codec): a dag-cbor link is not checked before this."""
    code, digest = split_multihash(check_cid(cid).digest)
    return digest if code == IDENTITY_CODE else None


def _names_empty_block(cid: CID) -> bool:
    """Whether `cid` is the hash of zero bytes: then its block is known without a fetch."""
    try:
        verify_block(cid, b"")
    except IpfsError:
        return False
    return True


def check_link_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise PathEscape(f"link name {name!r} would leave the directory; not followed")


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def safe_join(parent: str, name: str) -> str:
    """Join a link name to its directory's path, refusing any name that leaves the root.

    UnixFS names should not contain '/', but real DAGs do (the gateway
    conformance suite has `../file` inside a subdirectory). Like Kubo's TAR
    export, a name is resolved against its directory and accepted only if the
    result stays inside the root."""
    if name in ("", ".", "..") or "\x00" in name or "\\" in name or name.startswith("/"):
        raise PathEscape(f"link name {name!r} would leave the directory; not followed")
    if "/" not in name:
        return join(parent, name)
    parts: list[str] = parent.split("/") if parent else []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= 0:
                raise PathEscape(
                    f"link name {name!r} under {parent or 'the root'!r} would leave the root; not followed"
                )
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise PathEscape(f"link name {name!r} resolves to the root itself; not followed")
    return "/".join(parts)


def safe_join_all(parent: str, segments: tuple[str, ...]) -> str:
    """safe_join over several names (a document's map keys and list indexes)."""
    path = parent
    for segment in segments:
        path = safe_join(path, segment)
    return path


def _pb_file_size(u: UnixFSData) -> int:
    if u.filesize is not None:
        return u.filesize
    return len(u.data or b"") + sum(u.blocksizes)


def decode_document(codec: int, block: bytes) -> Any:
    try:
        if codec in (DAG_CBOR, CBOR):
            return dag_cbor.decode(block)
        return json.loads(block.decode("utf-8"), object_hook=_dag_json_hook if codec == DAG_JSON else None)
    except Exception as exc:
        raise DagError(f"cannot decode {_DOCUMENT_CODECS[codec]} block: {exc}") from exc


def _dag_json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "/" in obj:
        ref = obj["/"]
        if isinstance(ref, str):
            try:
                return parse_cid(ref)
            except InvalidCid:
                return obj
    return obj


def document_link_segments(node: Any) -> Iterator[tuple[tuple[str, ...], CID]]:
    """Every CID inside a decoded document, with its IPLD path as segments (map keys, list indexes)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), node)]
    found = 0
    while stack:
        segments, value = stack.pop()
        if isinstance(value, CID):
            found += 1
            if found > _MAX_DOCUMENT_LINKS:
                raise DagError(f"document has more than {_MAX_DOCUMENT_LINKS} links")
            yield segments, value
        elif isinstance(value, dict):
            for key in sorted(value, reverse=True):
                stack.append(((*segments, str(key)), value[key]))
        elif isinstance(value, list):
            for index in range(len(value) - 1, -1, -1):
                stack.append(((*segments, str(index)), value[index]))


def document_links(node: Any, prefix: str = "") -> Iterator[tuple[str, CID]]:
    """Every CID inside a decoded document, with its IPLD path joined as written (not confined)."""
    for segments, cid in document_link_segments(node):
        yield "/".join((prefix, *segments) if prefix else segments), cid


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


class DagWalker:
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

    def _count_node(self) -> None:
        self.nodes_visited += 1
        if self.nodes_visited > self._max_nodes:
            raise WalkBudgetExceeded(
                f"more than {self._max_nodes} DAG nodes visited (limits.max_dag_nodes); stopped walking"
            )

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
        elif codec in _DOCUMENT_CODECS:
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
                self._known_files[key] = _facts(entry)
                yield entry
                return
            if codec in _DOCUMENT_CODECS:
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
                self._known_files[key] = _facts(entry)
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

    async def read_file(self, entry: DagEntry, *, max_bytes: int) -> AsyncIterator[bytes]:
        """The file's bytes in order, block by block; never more than `max_bytes`, never
        more than `max_file_blocks` blocks, and only while every node's declared sizes
        agree with its links."""
        if entry.size is not None and entry.size > max_bytes:
            raise TooLarge(f"file is {entry.size} bytes; the limit per item is {max_bytes}")
        block, session, opened = entry.root_block, entry.session, None
        if block is None:  # a repeated path: open the file afresh
            block, opened = await self._open(entry.cid)
            session = opened
            if opened is not None:
                entry.provenance = opened.provenance
        total = 0
        budget = _BlockBudget(self._max_file_blocks)
        try:
            async for chunk in self._file_chunks(entry.cid, block, session, 0, frozenset(), entry.size, budget):
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
        self,
        cid: CID,
        block: bytes,
        session: BlockSession | None,
        depth: int,
        ancestors: frozenset[bytes],
        expected: int | None,
        budget: _BlockBudget,
    ) -> AsyncIterator[bytes]:
        budget.take(cid)
        codec = cid.codec.code
        if codec != DAG_PB:
            yield block
            return
        if depth > self._max_depth:
            raise DagError(f"file DAG deeper than {self._max_depth} levels")
        key = block_key(cid)
        if key in ancestors:
            raise DagCycle(f"file block {cid_text(cid)} links back to its own ancestor")
        node = decode_pbnode(block)
        if node.data is None:
            raise DagError(f"file block {cid_text(cid)} has no UnixFS data")
        unixfs = decode_unixfs(node.data)
        if unixfs.type not in (UnixFSType.FILE, UnixFSType.RAW):
            raise DagError(f"block {cid_text(cid)} inside a file is a UnixFS {unixfs.type.name.lower()}")
        _check_declared_sizes(cid, node, unixfs, expected)
        if unixfs.data:
            yield unixfs.data
        prefetch = getattr(session, "prefetch", None)
        if prefetch is not None:  # raw-block sessions fetch a window of siblings ahead
            prefetch(
                [
                    link.cid
                    for link, size in zip(node.links, unixfs.blocksizes)
                    if not _known_without_fetch(link.cid, size)
                ]
            )
        for link, size in zip(node.links, unixfs.blocksizes):
            child = inline_block(link.cid)
            if child is None and _known_without_fetch(link.cid, size):
                child = b""
            if child is None:
                if session is None:
                    raise DagError("file continues below an inline block")
                child = await session.get(link.cid)
            produced = 0
            async for chunk in self._file_chunks(link.cid, child, session, depth + 1, ancestors | {key}, size, budget):
                produced += len(chunk)
                yield chunk
            if produced != size:
                raise DagError(
                    f"block {cid_text(link.cid)} holds {produced} bytes of file data, its parent says {size}"
                )


def _known_without_fetch(cid: CID, size: int) -> bool:
    """A raw leaf of zero bytes whose CID is the hash of nothing: verified here, never fetched."""
    return size == 0 and cid.codec.code == RAW and _names_empty_block(cid)


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
