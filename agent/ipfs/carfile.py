"""A local CAR file as a BlockSource: indexed once (every block verified), then read by seek.

Only the offsets are kept in memory, never the blocks."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from agent.ipfs.blocks import BlockSession, Provenance
from agent.ipfs.car import CarHeader, CarReader, FileByteStream
from agent.ipfs.cid import CID, block_key, check_cid
from agent.ipfs.errors import MissingBlock


class CarFileBlockSource:
    def __init__(self, path: Path, header: CarHeader, index: dict[bytes, tuple[int, int]], fh: BinaryIO) -> None:
        self.path = path
        self.header = header
        self._index = index
        self._fh = fh

    @classmethod
    async def index(cls, path: Path, *, max_block_bytes: int = 2 * 1024 * 1024) -> CarFileBlockSource:
        fh = path.open("rb")
        try:
            reader = CarReader(FileByteStream(fh), max_block_bytes=max_block_bytes, source=str(path))
            header = await reader.read_header()
            index: dict[bytes, tuple[int, int]] = {}
            async for block in reader:
                index[block.key] = (fh.tell() - len(block.data), len(block.data))
        except BaseException:
            fh.close()
            raise
        return cls(path, header, index, fh)

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._fh.close()

    def read(self, cid: CID) -> bytes:
        where = self._index.get(block_key(cid))
        if where is None:
            raise MissingBlock(str(cid), f"not in {self.path.name}")
        self._fh.seek(where[0])
        return self._fh.read(where[1])

    async def open(self, cid: CID) -> tuple[bytes, BlockSession]:
        check_cid(cid)  # a link the CAR's own sections could never carry: say why, not "missing"
        session = _CarFileSession(self)
        return await session.get(cid), session


class _CarFileSession:
    def __init__(self, source: CarFileBlockSource) -> None:
        self._source = source
        self.provenance = Provenance()

    async def get(self, cid: CID) -> bytes:
        data = self._source.read(cid)
        self.provenance.served(f"car:{self._source.path}")
        return data

    async def aclose(self) -> None:
        return None
