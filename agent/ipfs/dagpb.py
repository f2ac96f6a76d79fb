"""dag-pb and UnixFS decoding, on the one protobuf reader (agent.ipfs.protobuf).

Written by hand on purpose: the two messages (PBNode/PBLink and UnixFS Data)
are tiny and the PyPI dag-pb packages are unmaintained. Specs: https://ipld.io/specs/codecs/dag-pb/spec/ and
https://specs.ipfs.tech/unixfs/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from agent.ipfs.cid import CID, cid_from_prefix
from agent.ipfs.errors import DagError, InvalidCid
from agent.ipfs.protobuf import ProtobufReader, field_bytes, field_varint

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


def _reader(buf: bytes | memoryview, what: str) -> ProtobufReader:
    return ProtobufReader(buf, what, DagError)


def _decode_link(buf: memoryview) -> PBLink:
    r = _reader(buf, "dag-pb link")
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    while not r.done():
        field_no, wire = r.key()
        if field_no == 1:
            r.expect(wire, 2)
            raw = r.length_delimited()
            try:
                cid, used = cid_from_prefix(raw)
            except InvalidCid as exc:
                raise DagError(f"dag-pb link: {exc}") from exc
            if used != len(raw):
                raise DagError("dag-pb link: trailing bytes after the CID")
        elif field_no == 2:
            r.expect(wire, 2)
            try:
                name = bytes(r.length_delimited()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DagError(f"dag-pb link: name is not UTF-8 ({exc})") from exc
        elif field_no == 3:
            r.expect(wire, 0)
            tsize = r.varint()
        else:
            raise DagError(f"dag-pb link: unknown field {field_no}")
    if cid is None:
        raise DagError("dag-pb link without a Hash")
    return PBLink(cid, name, tsize)


def decode_pbnode(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block. Unknown fields are an error: dag-pb is a strict codec."""
    r = _reader(block, "dag-pb node")
    links: list[PBLink] = []
    data: bytes | None = None
    while not r.done():
        field_no, wire = r.key()
        if field_no == 2:
            r.expect(wire, 2)
            if data is not None:
                raise DagError("dag-pb node: Links after Data")
            if len(links) >= _MAX_LINKS:
                raise DagError(f"dag-pb node: more than {_MAX_LINKS} links")
            links.append(_decode_link(r.length_delimited()))
        elif field_no == 1:
            r.expect(wire, 2)
            if data is not None:
                raise DagError("dag-pb node: duplicate Data")
            data = bytes(r.length_delimited())
        else:
            raise DagError(f"dag-pb node: unknown field {field_no}")
    return PBNode(tuple(links), data)


def _decode_unixtime(buf: memoryview) -> UnixTime:
    r = _reader(buf, "UnixFS mtime")
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
    r = _reader(data, "UnixFS data")
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
            r.expect(wire, 0)
            type_ = r.varint()
        elif field_no == 2:
            r.expect(wire, 2)
            payload = bytes(r.length_delimited())
        elif field_no == 3:
            r.expect(wire, 0)
            filesize = r.varint()
        elif field_no == 4:
            if wire == 2:  # packed
                packed = _reader(r.length_delimited(), r.what)
                while not packed.done():
                    blocksizes.append(packed.varint())
            else:
                r.expect(wire, 0)
                blocksizes.append(r.varint())
            if len(blocksizes) > _MAX_BLOCKSIZES:
                raise DagError(f"UnixFS data: more than {_MAX_BLOCKSIZES} blocksizes")
        elif field_no == 5:
            r.expect(wire, 0)
            hash_type = r.varint()
        elif field_no == 6:
            r.expect(wire, 0)
            fanout = r.varint()
        elif field_no == 7:
            r.expect(wire, 0)
            mode = r.varint() & 0xFFFFFFFF
        elif field_no == 8:
            r.expect(wire, 2)
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


def encode_unixfs(
    type_: UnixFSType | int,
    data: bytes | None = None,
    filesize: int | None = None,
    blocksizes: list[int] | None = None,
    hash_type: int | None = None,
    fanout: int | None = None,
) -> bytes:
    out = field_varint(1, int(type_))
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


def encode_pbnode(links: list[tuple[CID, str, int]], data: bytes | None) -> bytes:
    """Links are (cid, name, tsize); written in the given order, then Data (the canonical form)."""
    out = b""
    for cid, name, tsize in links:
        out += field_bytes(2, field_bytes(1, bytes(cid)) + field_bytes(2, name.encode()) + field_varint(3, tsize))
    if data is not None:
        out += field_bytes(1, data)
    return out
