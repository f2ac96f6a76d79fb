"""The one protobuf wire-format reader: dag-pb, UnixFS and IPNS records use it.

Written by hand on purpose: the messages are tiny, and the protobuf package's
parser is a large dependency not bounded for untrusted input. Every read is
bounds-checked against the buffer; a failure raises the caller's error type
(DagError for a block, MalformedRecord for an IPNS record) with a message that
names the message being read and where. Spec:
https://protobuf.dev/programming-guides/encoding/"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.ipfs.varint import PROTOBUF, VarintError, encode_uvarint, read_uvarint

__all__ = [
    "FIXED32",
    "FIXED64",
    "LENGTH_DELIMITED",
    "VARINT",
    "ProtobufError",
    "ProtobufReader",
    "field_bytes",
    "field_varint",
    "read_fields",
]

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
_FIXED_SIZES = {FIXED64: 8, FIXED32: 4}

ErrorType = Callable[[str], Exception]


class ProtobufError(ValueError):
    """Bytes that are not a well-formed protobuf message (when the caller names no error type)."""


class ProtobufReader:
    """Reads one message's fields in order; `field` is the number of the last key read."""

    __slots__ = ("buf", "end", "error", "field", "pos", "what")

    def __init__(self, buf: bytes | memoryview, what: str, error: ErrorType = ProtobufError) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.end = len(self.buf)
        self.what = what
        self.error = error
        self.field = 0

    def done(self) -> bool:
        return self.pos >= self.end

    def varint(self) -> int:
        start = self.pos
        try:
            value, self.pos = read_uvarint(self.buf, start, "varint", PROTOBUF)
        except VarintError as exc:
            raise self.error(f"{self.what}: {exc} at byte {start}") from None
        return value

    def key(self) -> tuple[int, int]:
        key = self.varint()
        field_no, wire = key >> 3, key & 7
        if field_no == 0:
            raise self.error(f"{self.what}: field number 0 at byte {self.pos}")
        self.field = field_no
        return field_no, wire

    def length_delimited(self) -> memoryview:
        length = self.varint()
        if length > self.end - self.pos:
            raise self.error(f"{self.what}: field {self.field} declares {length} bytes, {self.end - self.pos} remain")
        out = self.buf[self.pos : self.pos + length]
        self.pos += length
        return out

    def fixed(self, wire: int) -> memoryview:
        size = _FIXED_SIZES[wire]
        if self.end - self.pos < size:
            raise self.error(f"{self.what}: truncated fixed{size * 8} field {self.field}")
        out = self.buf[self.pos : self.pos + size]
        self.pos += size
        return out

    def fixed32(self) -> int:
        return int.from_bytes(self.fixed(FIXED32), "little")

    def value(self, wire: int) -> int | memoryview:
        """The value of a field of wire type `wire`: an int for a varint, the raw bytes otherwise."""
        if wire == VARINT:
            return self.varint()
        if wire == LENGTH_DELIMITED:
            return self.length_delimited()
        if wire in _FIXED_SIZES:
            return self.fixed(wire)
        raise self.error(
            f"{self.what}: field {self.field} uses wire type {wire}; only 0, 1, 2 and 5 exist (groups are not allowed)"
        )

    def skip(self, wire: int) -> None:
        self.value(wire)

    def expect(self, wire: int, want: int) -> None:
        if wire != want:
            raise self.error(f"{self.what}: field {self.field} has wire type {wire}, expected {want}")


def read_fields(
    buf: bytes | memoryview, known: Mapping[int, int], what: str, error: ErrorType = ProtobufError
) -> dict[int, int | bytes]:
    """Decode a flat message whose fields `known` maps to their wire types.

    Unknown fields are skipped (forward compatibility); a known field that
    repeats is refused, because parsers disagree on which copy wins and a
    signed record must mean one thing."""
    reader = ProtobufReader(buf, what, error)
    fields: dict[int, int | bytes] = {}
    while not reader.done():
        number, wire = reader.key()
        value = reader.value(wire)
        if number not in known:
            continue
        reader.expect(wire, known[number])
        if number in fields:
            raise error(f"{what}: field {number} appears twice")
        fields[number] = value if isinstance(value, int) else bytes(value)
    return fields


def field_bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field, as every protobuf marshaller writes it."""
    return encode_uvarint(number << 3 | LENGTH_DELIMITED) + encode_uvarint(len(data)) + data


def field_varint(number: int, value: int) -> bytes:
    return encode_uvarint(number << 3 | VARINT) + encode_uvarint(value)
