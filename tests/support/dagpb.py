"""Build dag-pb / UnixFS blocks by hand, for tests of malformed and pathological DAGs."""

from __future__ import annotations

from dataclasses import dataclass, field

from multiformats import CID, multihash

from agent.ipfs.blocks import Provenance
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
