"""Build dag-pb / UnixFS blocks by hand, for tests of malformed and pathological DAGs."""

from __future__ import annotations

from dataclasses import dataclass, field

from multiformats import CID, multihash

from agent.ipfs.blocks import Provenance
from agent.ipfs.cid import block_key
from agent.ipfs.errors import MissingBlock


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(no: int, data: bytes) -> bytes:
    return varint(no << 3 | 2) + varint(len(data)) + data


def field_varint(no: int, value: int) -> bytes:
    return varint(no << 3) + varint(value)


def unixfs(type_: int, data: bytes | None = None, filesize: int | None = None, blocksizes: list[int] | None = None,
           fanout: int | None = None, hash_type: int | None = None) -> bytes:
    out = field_varint(1, type_)
    if data is not None:
        out += field_bytes(2, data)
    if filesize is not None:
        out += field_varint(3, filesize)
    for size in blocksizes or []:
        out += field_varint(4, size)
    if hash_type is not None:
        out += field_varint(5, hash_type)
    if fanout is not None:
        out += field_varint(6, fanout)
    return out


def pbnode(links: list[tuple[CID, str, int]], data: bytes | None) -> bytes:
    out = b""
    for cid, name, tsize in links:
        out += field_bytes(2, field_bytes(1, bytes(cid)) + field_bytes(2, name.encode()) + field_varint(3, tsize))
    if data is not None:
        out += field_bytes(1, data)
    return out


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
