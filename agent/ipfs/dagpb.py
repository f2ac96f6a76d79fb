"""dag-pb and UnixFS decoding.

Written by hand on purpose: the two messages (PBNode/PBLink and UnixFS Data)
are tiny, the PyPI dag-pb packages are unmaintained, and pulling in protobuf
for them would add a large dependency whose parser is not bounded for
untrusted input. Specs: https://ipld.io/specs/codecs/dag-pb/spec/ and
https://specs.ipfs.tech/unixfs/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from agent.ipfs.cid import CID, cid_from_prefix, encode_uvarint
from agent.ipfs.errors import DagError, InvalidCid

DAG_PB = 0x70
RAW = 0x55
DAG_CBOR = 0x71
DAG_JSON = 0x0129
_MAX_LINKS = 1 << 20
_MAX_BLOCKSIZES = 1 << 20


class UnixFSType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class PBLink:
    cid: CID
    name: str | None
    tsize: int | None


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class UnixTime:
    seconds: int
    nanos: int = 0


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: UnixFSType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: UnixTime | None = None


class _Reader:
    """Protobuf wire-format reader over one buffer, with every read bounds-checked."""

    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes | memoryview, what: str) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.end = len(self.buf)
        self.what = what

    def done(self) -> bool:
        return self.pos >= self.end

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            if self.pos >= self.end:
                raise DagError(f"{self.what}: truncated varint at byte {self.pos}")
            byte = self.buf[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if value >= 1 << 64:
                    raise DagError(f"{self.what}: varint overflows 64 bits")
                return value
        raise DagError(f"{self.what}: varint longer than 10 bytes")

    def key(self) -> tuple[int, int]:
        key = self.varint()
        field_no, wire = key >> 3, key & 7
        if field_no == 0:
            raise DagError(f"{self.what}: field number 0 at byte {self.pos}")
        return field_no, wire

    def length_delimited(self) -> memoryview:
        length = self.varint()
        if length > self.end - self.pos:
            raise DagError(f"{self.what}: field declares {length} bytes, {self.end - self.pos} remain")
        out = self.buf[self.pos : self.pos + length]
        self.pos += length
        return out

    def fixed32(self) -> int:
        if self.end - self.pos < 4:
            raise DagError(f"{self.what}: truncated fixed32")
        value = int.from_bytes(self.buf[self.pos : self.pos + 4], "little")
        self.pos += 4
        return value

    def skip(self, wire: int) -> None:
        if wire == 0:
            self.varint()
        elif wire == 1:
            if self.end - self.pos < 8:
                raise DagError(f"{self.what}: truncated fixed64")
            self.pos += 8
        elif wire == 2:
            self.length_delimited()
        elif wire == 5:
            self.fixed32()
        else:
            raise DagError(f"{self.what}: invalid wire type {wire}")


def _expect(wire: int, want: int, what: str, field_no: int) -> None:
    if wire != want:
        raise DagError(f"{what}: field {field_no} has wire type {wire}, expected {want}")


def _decode_link(buf: memoryview) -> PBLink:
    r = _Reader(buf, "dag-pb link")
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    while not r.done():
        field_no, wire = r.key()
        if field_no == 1:
            _expect(wire, 2, r.what, 1)
            raw = r.length_delimited()
            try:
                cid, used = cid_from_prefix(raw)
            except InvalidCid as exc:
                raise DagError(f"dag-pb link: {exc}") from exc
            if used != len(raw):
                raise DagError("dag-pb link: trailing bytes after the CID")
        elif field_no == 2:
            _expect(wire, 2, r.what, 2)
            try:
                name = bytes(r.length_delimited()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DagError(f"dag-pb link: name is not UTF-8 ({exc})") from exc
        elif field_no == 3:
            _expect(wire, 0, r.what, 3)
            tsize = r.varint()
        else:
            raise DagError(f"dag-pb link: unknown field {field_no}")
    if cid is None:
        raise DagError("dag-pb link without a Hash")
    return PBLink(cid, name, tsize)


def decode_pbnode(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block. Unknown fields are an error: dag-pb is a strict codec."""
    r = _Reader(block, "dag-pb node")
    links: list[PBLink] = []
    data: bytes | None = None
    while not r.done():
        field_no, wire = r.key()
        if field_no == 2:
            _expect(wire, 2, r.what, 2)
            if data is not None:
                raise DagError("dag-pb node: Links after Data")
            if len(links) >= _MAX_LINKS:
                raise DagError(f"dag-pb node: more than {_MAX_LINKS} links")
            links.append(_decode_link(r.length_delimited()))
        elif field_no == 1:
            _expect(wire, 2, r.what, 1)
            if data is not None:
                raise DagError("dag-pb node: duplicate Data")
            data = bytes(r.length_delimited())
        else:
            raise DagError(f"dag-pb node: unknown field {field_no}")
    return PBNode(tuple(links), data)


def _decode_unixtime(buf: memoryview) -> UnixTime:
    r = _Reader(buf, "UnixFS mtime")
    seconds = 0
    nanos = 0
    while not r.done():
        field_no, wire = r.key()
        if field_no == 1 and wire == 0:
            raw = r.varint()
            seconds = raw - (1 << 64) if raw >= 1 << 63 else raw  # int64
        elif field_no == 2 and wire == 5:
            nanos = r.fixed32()
            if not 0 < nanos < 1_000_000_000:
                raise DagError(f"UnixFS mtime: nanoseconds {nanos} out of range")
        else:
            r.skip(wire)
    return UnixTime(seconds, nanos)


def decode_unixfs(data: bytes | memoryview) -> UnixFSData:
    r = _Reader(data, "UnixFS data")
    type_: int | None = None
    payload: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: UnixTime | None = None
    while not r.done():
        field_no, wire = r.key()
        if field_no == 1:
            _expect(wire, 0, r.what, 1)
            type_ = r.varint()
        elif field_no == 2:
            _expect(wire, 2, r.what, 2)
            payload = bytes(r.length_delimited())
        elif field_no == 3:
            _expect(wire, 0, r.what, 3)
            filesize = r.varint()
        elif field_no == 4:
            if wire == 2:  # packed
                packed = _Reader(r.length_delimited(), r.what)
                while not packed.done():
                    blocksizes.append(packed.varint())
            else:
                _expect(wire, 0, r.what, 4)
                blocksizes.append(r.varint())
            if len(blocksizes) > _MAX_BLOCKSIZES:
                raise DagError(f"UnixFS data: more than {_MAX_BLOCKSIZES} blocksizes")
        elif field_no == 5:
            _expect(wire, 0, r.what, 5)
            hash_type = r.varint()
        elif field_no == 6:
            _expect(wire, 0, r.what, 6)
            fanout = r.varint()
        elif field_no == 7:
            _expect(wire, 0, r.what, 7)
            mode = r.varint() & 0xFFFFFFFF
        elif field_no == 8:
            _expect(wire, 2, r.what, 8)
            mtime = _decode_unixtime(r.length_delimited())
        else:
            r.skip(wire)  # forward compatible, as the spec asks
    if type_ is None:
        raise DagError("UnixFS data: no Type")
    try:
        kind = UnixFSType(type_)
    except ValueError:
        raise DagError(f"UnixFS data: unknown Type {type_}") from None
    return UnixFSData(kind, payload, filesize, tuple(blocksizes), hash_type, fanout, mode, mtime)


# --- encoding: for building DAGs (benchmarks, tests, tools) --------------------

def _field_bytes(no: int, data: bytes) -> bytes:
    return encode_uvarint(no << 3 | 2) + encode_uvarint(len(data)) + data


def _field_varint(no: int, value: int) -> bytes:
    return encode_uvarint(no << 3) + encode_uvarint(value)


def encode_unixfs(type_: UnixFSType | int, data: bytes | None = None, filesize: int | None = None,
                  blocksizes: list[int] | None = None, hash_type: int | None = None,
                  fanout: int | None = None) -> bytes:
    out = _field_varint(1, int(type_))
    if data is not None:
        out += _field_bytes(2, data)
    if filesize is not None:
        out += _field_varint(3, filesize)
    for size in blocksizes or []:
        out += _field_varint(4, size)
    if hash_type is not None:
        out += _field_varint(5, hash_type)
    if fanout is not None:
        out += _field_varint(6, fanout)
    return out


def encode_pbnode(links: list[tuple[CID, str, int]], data: bytes | None) -> bytes:
    """Links are (cid, name, tsize); written in the given order, then Data (the canonical form)."""
    out = b""
    for cid, name, tsize in links:
        out += _field_bytes(2, _field_bytes(1, bytes(cid)) + _field_bytes(2, name.encode()) + _field_varint(3, tsize))
    if data is not None:
        out += _field_bytes(1, data)
    return out
