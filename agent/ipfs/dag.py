"""Walk a DAG from a root: enumerate the files below it and stream their bytes.

Understands UnixFS (files with raw or dag-pb leaves, directories, HAMT-sharded
directories, symlinks) and follows the links of dag-cbor / dag-json documents.
Every path component is checked so that no link name can leave the root, and
depth, item count and bytes are bounded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import dag_cbor

from agent.ipfs.blocks import BlockSession, BlockSource, Provenance
from agent.ipfs.cid import CID, IDENTITY_CODE, block_key, parse_cid, split_multihash
from agent.ipfs.dagpb import DAG_CBOR, DAG_JSON, DAG_PB, RAW, PBNode, UnixFSData, UnixFSType, decode_pbnode, decode_unixfs
from agent.ipfs.errors import DagCycle, DagError, InvalidCid, IpfsError, PathEscape, TooLarge

CBOR = 0x51
JSON = 0x0200
_DOCUMENT_CODECS = {DAG_CBOR: "application/vnd.ipld.dag-cbor", DAG_JSON: "application/vnd.ipld.dag-json",
                    CBOR: "application/cbor", JSON: "application/json"}
_MAX_DOCUMENT_LINKS = 10_000


class EntryKind(StrEnum):
    WITHHELD = "withheld"  # the caller's policy said not to fetch it (a denylisted CID or path)
    KNOWN = "known"  # the caller examined this CID before (an earlier scan): not fetched again
    FILE = "file"
    SYMLINK = "symlink"
    DOCUMENT = "document"
    DIRECTORY = "directory"
    ERROR = "error"


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

    async def release(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.aclose()


def inline_block(cid: CID) -> bytes | None:
    """An identity CID carries its block; nothing to fetch or verify."""
    code, digest = split_multihash(cid)
    return digest if code == IDENTITY_CODE else None


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
                raise PathEscape(f"link name {name!r} under {parent or 'the root'!r} would leave the root; not followed")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise PathEscape(f"link name {name!r} resolves to the root itself; not followed")
    return "/".join(parts)


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


def document_links(node: Any, prefix: str = "") -> Iterator[tuple[str, CID]]:
    """Every CID inside a decoded document, with its IPLD path (map keys, list indices)."""
    stack: list[tuple[str, Any]] = [(prefix, node)]
    found = 0
    while stack:
        path, value = stack.pop()
        if isinstance(value, CID):
            found += 1
            if found > _MAX_DOCUMENT_LINKS:
                raise DagError(f"document has more than {_MAX_DOCUMENT_LINKS} links")
            yield path, value
        elif isinstance(value, dict):
            for key in sorted(value, reverse=True):
                stack.append((join(path, str(key)), value[key]))
        elif isinstance(value, list):
            for index in range(len(value) - 1, -1, -1):
                stack.append((join(path, str(index)), value[index]))


class DagWalker:
    def __init__(self, source: BlockSource, *, max_depth: int = 256, max_items: int = 100_000,
                 before_fetch: Callable[[CID, str], Awaitable[EntryKind | None]] | None = None) -> None:
        self._source = source
        # Asked before any link is followed: WITHHELD or KNOWN means report the
        # link as such and fetch nothing at or below it; None means go on.
        self._before_fetch = before_fetch
        self._max_depth = max_depth
        self._max_items = max_items
        self.items_yielded = 0
        # File roots already seen in this walk: a second path to the same CID is
        # reported without fetching its root again (directories share files often).
        self._known_files: dict[bytes, DagEntry] = {}

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
                async for entry_name, child in self._hamt_links(node, unixfs, session, depth=0):
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
            yield DagEntry(path, cid, EntryKind.FILE, size=known.size, mode=known.mode, mtime=known.mtime,
                           codec=known.codec)
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
                entry = DagEntry(path, cid, EntryKind.FILE, size=len(block), codec="raw", provenance=provenance,
                                 root_block=block, session=session)
                self._known_files[key] = entry
                yield entry
                return
            if codec in _DOCUMENT_CODECS:
                async for entry in self._visit_document(cid, block, path, depth, ancestors | {key}, provenance):
                    yield entry
                return
            if codec != DAG_PB:
                yield DagEntry(path, cid, EntryKind.FILE, size=len(block), codec=cid.codec.name,
                               provenance=provenance, root_block=block)
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
                entry = DagEntry(path, cid, EntryKind.FILE, size=_pb_file_size(unixfs), mode=mode, mtime=mtime,
                                 codec="dag-pb", provenance=provenance, root_block=block, session=session)
                self._known_files[key] = entry
                yield entry
                return
            if unixfs is not None and unixfs.type == UnixFSType.SYMLINK:
                target = (unixfs.data or b"").decode("utf-8", errors="replace")
                yield DagEntry(path, cid, EntryKind.SYMLINK, size=len(unixfs.data or b""), mode=mode, mtime=mtime,
                               symlink_target=target, codec="dag-pb", provenance=provenance)
                return
            if unixfs is not None and unixfs.type == UnixFSType.HAMT_SHARD:
                links: list[tuple[str, CID]] = []
                try:
                    async for name, child in self._hamt_links(node, unixfs, session, depth=0):
                        links.append((name, child))
                except IpfsError as exc:
                    yield DagEntry(path, cid, EntryKind.ERROR, codec="dag-pb", error=exc, provenance=provenance)
                    return
            elif unixfs is None or unixfs.type == UnixFSType.DIRECTORY:
                links = [(link.name or "", link.cid) for link in node.links]
            else:
                yield DagEntry(path, cid, EntryKind.ERROR, codec="dag-pb", provenance=provenance,
                               error=DagError(f"UnixFS {unixfs.type.name} nodes are not supported"))
                return
            if session is not None:  # the directory is read: free its connection before descending
                await session.aclose()
                keep_session = True
            for name, child in links:
                try:
                    child_path = safe_join(path, name)
                except PathEscape as exc:
                    yield DagEntry(join(path, name), child, EntryKind.ERROR, error=exc)
                    continue
                async for entry in self._visit(child, child_path, depth + 1, ancestors | {key}):
                    yield entry
        finally:
            if not keep_session and session is not None:
                await session.aclose()

    async def _visit_document(self, cid: CID, block: bytes, path: str, depth: int, ancestors: frozenset[bytes],
                              provenance: Provenance) -> AsyncIterator[DagEntry]:
        codec = cid.codec.code
        entry = DagEntry(path, cid, EntryKind.DOCUMENT, size=len(block), codec=cid.codec.name,
                         provenance=provenance, root_block=block)
        try:
            links = list(document_links(decode_document(codec, block)))
        except DagError as exc:
            entry.error = exc
            yield entry
            return
        yield entry
        for sub, child in links:
            async for found in self._visit(child, join(path, sub), depth + 1, ancestors):
                yield found

    async def _hamt_links(self, node: PBNode, unixfs: UnixFSData, session: BlockSession | None,
                          depth: int) -> AsyncIterator[tuple[str, CID]]:
        """Entries of a HAMT-sharded directory, in link order (spec: UnixFS HAMTDirectory)."""
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
            if len(name) == pad:
                block = inline_block(link.cid)
                if block is None:
                    if session is None:
                        raise DagError("HAMT shard below an inline block")
                    block = await session.get(link.cid)
                child = decode_pbnode(block)
                child_fs = decode_unixfs(child.data) if child.data is not None else None
                if child_fs is None or child_fs.type != UnixFSType.HAMT_SHARD:
                    raise DagError(f"HAMT link {name!r} points at something that is not a shard")
                async for item in self._hamt_links(child, child_fs, session, depth + 1):
                    yield item
            else:
                yield name[pad:], link.cid

    async def read_file(self, entry: DagEntry, *, max_bytes: int) -> AsyncIterator[bytes]:
        """The file's bytes in order, block by block; never more than `max_bytes`."""
        if entry.size is not None and entry.size > max_bytes:
            raise TooLarge(f"file is {entry.size} bytes; the limit per item is {max_bytes}")
        block, session, opened = entry.root_block, entry.session, None
        if block is None:  # a repeated path: open the file afresh
            block, opened = await self._open(entry.cid)
            session = opened
            if opened is not None:
                entry.provenance = opened.provenance
        total = 0
        try:
            async for chunk in self._file_chunks(entry.cid, block, session, 0, frozenset()):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLarge(f"file exceeds the limit per item of {max_bytes} bytes")
                yield chunk
        finally:
            if opened is not None:
                await opened.aclose()
        if entry.size is not None and total != entry.size:
            raise DagError(f"file declares {entry.size} bytes but its blocks hold {total}")

    async def _file_chunks(self, cid: CID, block: bytes, session: BlockSession | None, depth: int,
                           ancestors: frozenset[bytes]) -> AsyncIterator[bytes]:
        codec = cid.codec.code
        if codec != DAG_PB:
            yield block
            return
        if depth > self._max_depth:
            raise DagError(f"file DAG deeper than {self._max_depth} levels")
        key = block_key(cid)
        if key in ancestors:
            raise DagCycle(f"file block {cid} links back to its own ancestor")
        node = decode_pbnode(block)
        if node.data is None:
            raise DagError(f"file block {cid} has no UnixFS data")
        unixfs = decode_unixfs(node.data)
        if unixfs.type not in (UnixFSType.FILE, UnixFSType.RAW):
            raise DagError(f"block {cid} inside a file is a UnixFS {unixfs.type.name.lower()}")
        if node.links and len(unixfs.blocksizes) != len(node.links):
            raise DagError(f"file block {cid} has {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes")
        if unixfs.data:
            yield unixfs.data
        prefetch = getattr(session, "prefetch", None)
        if prefetch is not None:  # raw-block sessions fetch a window of siblings ahead
            prefetch([link.cid for link in node.links])
        for link, expected in zip(node.links, unixfs.blocksizes):
            child = inline_block(link.cid)
            if child is None:
                if session is None:
                    raise DagError("file continues below an inline block")
                child = await session.get(link.cid)
            produced = 0
            async for chunk in self._file_chunks(link.cid, child, session, depth + 1, ancestors | {key}):
                produced += len(chunk)
                yield chunk
            if produced != expected:
                raise DagError(f"block {link.cid} holds {produced} bytes of file data, its parent says {expected}")
