"""Streaming CAR (v1 and v2) reader.

Sections are read one at a time from an async byte stream, so a CAR of any size
is read with memory bounded by the largest block. Every block is checked
against its CID before it is handed on. Spec: https://ipld.io/specs/transport/car/
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import dag_cbor

from agent.ipfs.cid import CID, block_key, check_cid, cid_from_prefix
from agent.ipfs.errors import BlockTooLarge, CarError, InvalidCid
from agent.ipfs.multihash import verify_block
from agent.ipfs.varint import MULTIFORMATS, VarintError, VarintProblem, encode_uvarint, read_uvarint

CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
_CARV2_HEADER_LEN = 40
_MAX_HEADER_BYTES = 1 << 20
# A section holds a CID (at most a few hundred bytes with any sane multihash) and a block.
_CID_ALLOWANCE = 512


class ByteStream(Protocol):
    """What aiohttp's StreamReader offers: readexactly raising IncompleteReadError at EOF."""

    async def readexactly(self, n: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Block:
    cid: CID
    data: bytes

    @property
    def key(self) -> bytes:
        return block_key(self.cid)


@dataclass(frozen=True, slots=True)
class CarHeader:
    version: int
    roots: tuple[CID, ...]


class FileByteStream:
    """A local file as a ByteStream (reads are small and sequential)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    async def readexactly(self, n: int) -> bytes:
        data = self._fh.read(n)
        if len(data) < n:
            raise asyncio.IncompleteReadError(data, n)
        return data


class BytesStream:
    """In-memory bytes as a ByteStream."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    async def readexactly(self, n: int) -> bytes:
        chunk = bytes(self._view[self._pos : self._pos + n])
        self._pos += len(chunk)
        if len(chunk) < n:
            raise asyncio.IncompleteReadError(chunk, n)
        return chunk


class _LimitedStream:
    """The CARv1 payload inside a CARv2: EOF after `limit` bytes."""

    def __init__(self, inner: ByteStream, limit: int) -> None:
        self._inner = inner
        self._left = limit

    async def readexactly(self, n: int) -> bytes:
        if n > self._left:
            got = await self._inner.readexactly(self._left) if self._left else b""
            self._left = 0
            raise asyncio.IncompleteReadError(got, n)
        self._left -= n
        return await self._inner.readexactly(n)


_VARINT_MESSAGES = {
    VarintProblem.NOT_MINIMAL: "malformed CAR: non-minimal varint",
    VarintProblem.TOO_LONG: f"malformed CAR: varint longer than {MULTIFORMATS.max_bytes} bytes",
}


async def _read_varint(stream: ByteStream, *, at_boundary: bool) -> int | None:
    """A length prefix, read from the stream byte by byte and decoded by the one varint reader.

    Returns None on a clean EOF before the first byte when at a boundary."""
    prefix = bytearray()
    while len(prefix) < MULTIFORMATS.max_bytes:
        try:
            byte = (await stream.readexactly(1))[0]
        except asyncio.IncompleteReadError:
            if not prefix and at_boundary:
                return None
            raise CarError("truncated CAR: stream ended inside a length prefix") from None
        prefix.append(byte)
        if not byte & 0x80:
            break
    try:
        return read_uvarint(bytes(prefix), 0, "CAR length prefix", MULTIFORMATS)[0]
    except VarintError as exc:
        raise CarError(_VARINT_MESSAGES.get(exc.problem, f"malformed CAR: {exc}")) from None


class CarReader:
    """Reads a CAR stream: `await reader.read_header()`, then `async for block in reader`.

    `verify=False` exists only for tools that inspect broken CARs; the agent always verifies."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        max_block_bytes: int = 2 * 1024 * 1024,
        verify: bool = True,
        source: str | None = None,
    ) -> None:
        self._stream = stream
        self._max_section = max_block_bytes + _CID_ALLOWANCE
        self._max_block = max_block_bytes
        self._verify = verify
        self._source = source
        self._header: CarHeader | None = None
        self.blocks_read = 0

    async def read_header(self) -> CarHeader:
        if self._header is not None:
            return self._header
        header = await self._read_v1_header()
        if header.version == 2:
            self._stream = await self._enter_v2_payload()
            header = await self._read_v1_header()
            if header.version != 1:
                raise CarError(f"CARv2 payload must be a CARv1, found version {header.version}")
        elif header.version != 1:
            raise CarError(f"unsupported CAR version {header.version}")
        self._header = header
        return header

    async def _read_v1_header(self) -> CarHeader:
        length = await _read_varint(self._stream, at_boundary=True)
        if length is None:
            raise CarError("empty CAR: no header")
        if length == 0 or length > _MAX_HEADER_BYTES:
            raise CarError(f"malformed CAR: header length {length}")
        try:
            raw = await self._stream.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise CarError(f"truncated CAR: header declares {length} bytes, {len(exc.partial)} arrived") from None
        try:
            decoded = dag_cbor.decode(raw)
        except Exception as exc:
            raise CarError(f"malformed CAR header: {exc}") from exc
        if not isinstance(decoded, dict):
            raise CarError("malformed CAR header: no version")
        version = decoded.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise CarError("malformed CAR header: no version")
        roots_raw = decoded.get("roots", [])
        if version == 1 and (not isinstance(roots_raw, list) or not all(isinstance(r, CID) for r in roots_raw)):
            raise CarError("malformed CAR header: roots must be a list of CIDs")
        roots = tuple(r for r in roots_raw if isinstance(r, CID)) if isinstance(roots_raw, list) else ()
        for root in roots:  # decoded by dag_cbor: the same rules as every other CID
            try:
                check_cid(root)
            except InvalidCid as exc:
                raise CarError(f"malformed CAR header: root {root}: {exc}") from exc
        return CarHeader(version=version, roots=roots)

    async def _enter_v2_payload(self) -> ByteStream:
        try:
            raw = await self._stream.readexactly(_CARV2_HEADER_LEN)
        except asyncio.IncompleteReadError:
            raise CarError("truncated CARv2: header incomplete") from None
        data_offset, data_size, _index_offset = struct.unpack("<QQQ", raw[16:40])
        consumed = len(CARV2_PRAGMA) + _CARV2_HEADER_LEN
        if data_offset < consumed:
            raise CarError(f"malformed CARv2: data offset {data_offset} lies inside the header")
        gap = data_offset - consumed
        try:
            while gap:  # padding; read in chunks so a huge offset costs no memory
                step = min(gap, 1 << 16)
                await self._stream.readexactly(step)
                gap -= step
        except asyncio.IncompleteReadError:
            raise CarError("truncated CARv2: stream ended before the data payload") from None
        return _LimitedStream(self._stream, data_size)

    def __aiter__(self) -> AsyncIterator[Block]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[Block]:
        await self.read_header()
        while True:
            length = await _read_varint(self._stream, at_boundary=True)
            if length is None:
                return
            if length == 0:
                raise CarError("malformed CAR: zero-length section")
            if length > self._max_section:
                raise BlockTooLarge(
                    f"CAR section {self.blocks_read + 1} declares {length} bytes; "
                    f"blocks over {self._max_block} bytes are refused"
                )
            try:
                section = await self._stream.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                raise CarError(
                    f"truncated CAR: section {self.blocks_read + 1} declares {length} bytes, {len(exc.partial)} arrived"
                ) from None
            try:
                cid, cid_len = cid_from_prefix(section)
            except InvalidCid as exc:
                raise CarError(f"malformed CAR section {self.blocks_read + 1}: {exc}") from exc
            data = section[cid_len:]
            if len(data) > self._max_block:
                raise BlockTooLarge(
                    f"block {cid} is {len(data)} bytes; blocks over {self._max_block} bytes are refused"
                )
            if self._verify:
                verify_block(cid, data, self._source)
            self.blocks_read += 1
            yield Block(cid, data)


async def read_car_file(path: Path, *, max_block_bytes: int = 2 * 1024 * 1024) -> tuple[CarHeader, list[Block]]:
    """Read a whole (small) CAR file into memory; for tests and tools, not for scans."""
    with path.open("rb") as fh:
        reader = CarReader(FileByteStream(fh), max_block_bytes=max_block_bytes, source=str(path))
        header = await reader.read_header()
        return header, [block async for block in reader]


def encode_car_header(roots: list[CID]) -> bytes:
    header = dag_cbor.encode({"roots": list[Any](roots), "version": 1})
    return encode_uvarint(len(header)) + header


def encode_car_section(cid: CID, data: bytes) -> bytes:
    raw = bytes(cid)
    return encode_uvarint(len(raw) + len(data)) + raw + data
