"""Build dag-pb / UnixFS blocks by hand, for tests of malformed and pathological DAGs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multiformats import CID, multihash

from agent.ipfs.blocks import Provenance
from agent.ipfs.car import encode_car_header, encode_car_section
from agent.ipfs.cid import block_key
from agent.ipfs.dagpb import encode_pbnode, encode_unixfs
from agent.ipfs.errors import MissingBlock

# Test names for the encoders in agent.ipfs.dagpb.
unixfs = encode_unixfs
pbnode = encode_pbnode


def cid_of(data: bytes, codec: str = "dag-pb") -> CID:
    return CID("base32", 1, codec, multihash.digest(data, "sha2-256"))


@dataclass
class DictSource:
    """Serves blocks by key WITHOUT checking them: only for DAG shapes that verified
    retrieval makes impossible (cycles), to prove the walker survives them anyway."""

    blocks: dict[bytes, bytes] = field(default_factory=dict)

    def put(self, cid: CID, data: bytes) -> None:
        self.blocks[block_key(cid)] = data

    async def open(self, cid: CID) -> tuple[bytes, _DictSession]:
        session = _DictSession(self)
        return await session.get(cid), session


class _DictSession:
    def __init__(self, source: DictSource) -> None:
        self.source = source
        self.provenance = Provenance()

    async def get(self, cid: CID) -> bytes:
        data = self.source.blocks.get(block_key(cid))
        if data is None:
            raise MissingBlock(str(cid), "not in the test source")
        return data

    async def aclose(self) -> None:
        return None


class TooManyFetches(RuntimeError):
    """Raised by a CountingSource past its guard: old, unbounded code paths end here
    (a plain error, not an IpfsError, so no walker can mistake it for a bad block)."""


@dataclass
class CountingSource(DictSource):
    """A DictSource that counts every block handed out (session roots and gets) and
    refuses to serve more than `guard`: a walk that would explode fails fast instead."""

    guard: int = 100_000
    served: int = 0
    open_sessions: int = 0
    most_open: int = 0  # the most sessions open at once (a CAR stream, a connection each, for real)

    async def open(self, cid: CID) -> tuple[bytes, _DictSession]:
        session = _CountingSession(self)
        self.open_sessions += 1
        self.most_open = max(self.most_open, self.open_sessions)
        return await session.get(cid), session


class _CountingSession(_DictSession):
    source: CountingSource
    closed = False

    async def get(self, cid: CID) -> bytes:
        self.source.served += 1
        if self.source.served > self.source.guard:
            raise TooManyFetches(f"more than {self.source.guard} blocks asked for")
        return await super().get(cid)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.source.open_sessions -= 1


Blocks = list[tuple[CID, bytes]]


def block(blocks: Blocks, data: bytes, codec: str = "dag-pb") -> CID:
    cid = cid_of(data, codec)
    blocks.append((cid, data))
    return cid


def shared_directory_bomb(levels: int, bottom: tuple[CID, int] | None = None) -> tuple[CID, Blocks]:
    """Nested directories, each linking its one child twice ("a" and "b"): 2**levels
    paths to the bottom through only `levels` distinct directories."""
    blocks: Blocks = []
    child = bottom or (block(blocks, pbnode([], unixfs(1))), 4)
    for _ in range(levels):
        cid, size = child
        node = pbnode([(cid, "a", size), (cid, "b", size)], unixfs(1))
        child = (block(blocks, node), 2 * size + len(node))
    return child[0], blocks


def hamt_shard(links: list[tuple[CID, str, int]]) -> bytes:
    """A HAMT shard node (murmur3-x64-64, fanout 256; the walker does not check bucket placement)."""
    return pbnode(links, unixfs(5, hash_type=0x22, fanout=256))


def hamt_bomb(levels: int, leaf_entries: list[tuple[str, CID]]) -> tuple[CID, Blocks]:
    """A HAMT directory whose every shard links one sub-shard 256 times: 256**levels
    paths to the bottom shard's entries through `levels` + 1 distinct shards."""
    blocks: Blocks = []
    shard = block(blocks, hamt_shard([(cid, f"00{name}", 1) for name, cid in leaf_entries]))
    for _ in range(levels):
        shard = block(blocks, hamt_shard([(shard, f"{i:02X}", 1) for i in range(256)]))
    return shard, blocks


def file_node(links: list[tuple[CID, int]], filesize: int | None = None) -> bytes:
    """A UnixFS file node over `links` (cid, blocksize); filesize defaults to the truth."""
    sizes = [size for _, size in links]
    return pbnode(
        [(cid, "", size) for cid, size in links],
        unixfs(2, filesize=sum(sizes) if filesize is None else filesize, blocksizes=sizes),
    )


def write_car(path: Path, root: CID, blocks: Blocks) -> Path:
    """A CAR v1 file of `blocks` under `root`, as `ipfs dag export` writes one."""
    with path.open("wb") as fh:
        fh.write(encode_car_header([root]))
        for cid, data in blocks:
            fh.write(encode_car_section(cid, data))
    return path
