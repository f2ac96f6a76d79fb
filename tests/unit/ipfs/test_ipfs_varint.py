"""The one varint reader: the multiformats rule (minimal, 9 bytes) and the protobuf rule (10 bytes, 64 bits)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.ipfs.car import BytesStream, CarReader
from agent.ipfs.dagpb import decode_pbnode, decode_unixfs
from agent.ipfs.errors import CarError, DagError
from agent.ipfs.varint import (
    MULTIFORMATS,
    PROTOBUF,
    VarintError,
    VarintProblem,
    encode_uvarint,
    read_uvarint,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16384, b"\x80\x80\x01"),
        (2**63 - 1, b"\xff" * 8 + b"\x7f"),
    ],
)
def test_the_spec_examples_decode_and_encode(value: int, encoded: bytes) -> None:
    assert encode_uvarint(value) == encoded
    assert read_uvarint(encoded) == (value, len(encoded))
    assert read_uvarint(encoded, fmt=PROTOBUF) == (value, len(encoded))


def test_reading_starts_at_pos_and_stops_after_the_varint() -> None:
    buf = memoryview(b"\xff\xac\x02\x55")
    assert read_uvarint(buf, 1) == (300, 3)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_every_value_round_trips_in_the_fewest_bytes(value: int) -> None:
    encoded = encode_uvarint(value)
    assert read_uvarint(encoded + b"\x99") == (value, len(encoded))
    assert len(encoded) == max(1, -(-value.bit_length() // 7))


@pytest.mark.parametrize("encoded", [b"\x80\x00", b"\x81\x00", b"\xff\x80\x00", b"\x80" * 8 + b"\x00"])
def test_a_longer_spelling_of_a_shorter_varint_is_refused_by_multiformats(encoded: bytes) -> None:
    with pytest.raises(VarintError, match=r"^CID codec is not minimally encoded$") as info:
        read_uvarint(encoded, 0, "CID codec")
    assert info.value.problem is VarintProblem.NOT_MINIMAL and isinstance(info.value, ValueError)


def test_protobuf_accepts_a_non_minimal_varint_as_go_protowire_does() -> None:
    assert read_uvarint(b"\x81\x00", fmt=PROTOBUF) == (1, 2)


@pytest.mark.parametrize("encoded", [b"", b"\x80", b"\xff\xff"])
@pytest.mark.parametrize("fmt", [MULTIFORMATS, PROTOBUF])
def test_a_varint_cut_short_is_truncated(encoded: bytes, fmt: object) -> None:
    assert fmt is MULTIFORMATS or fmt is PROTOBUF
    with pytest.raises(VarintError, match=r"^truncated multihash digest length$") as info:
        read_uvarint(encoded, 0, "multihash digest length", fmt)
    assert info.value.problem is VarintProblem.TRUNCATED


def test_multiformats_stops_at_nine_bytes() -> None:
    with pytest.raises(VarintError, match=r"^CID version longer than 9 bytes$") as info:
        read_uvarint(b"\xff" * 9 + b"\x01", 0, "CID version")
    assert info.value.problem is VarintProblem.TOO_LONG


def test_protobuf_reads_ten_bytes_and_no_more() -> None:
    assert read_uvarint(b"\xff" * 9 + b"\x01", fmt=PROTOBUF) == (2**64 - 1, 10)
    with pytest.raises(VarintError, match=r"^varint longer than 10 bytes$") as info:
        read_uvarint(b"\xff" * 10 + b"\x01", fmt=PROTOBUF)
    assert info.value.problem is VarintProblem.TOO_LONG


def test_a_tenth_byte_past_64_bits_overflows() -> None:
    with pytest.raises(VarintError, match=r"^varint overflows 64 bits$") as info:
        read_uvarint(b"\xff" * 9 + b"\x02", fmt=PROTOBUF)
    assert info.value.problem is VarintProblem.OVERFLOW


def test_negative_values_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        encode_uvarint(-1)


# --- the callers keep their own error types and words on the one reader ---------------


async def _read_car(data: bytes) -> None:
    reader = CarReader(BytesStream(data))
    await reader.read_header()


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (b"\x80\x00", r"^malformed CAR: non-minimal varint$"),
        (b"\xff" * 9, r"^malformed CAR: varint longer than 9 bytes$"),
        (b"\xff\xff", r"^truncated CAR: stream ended inside a length prefix$"),
    ],
)
def test_the_car_stream_adapter_refuses_what_the_reader_refuses(prefix: bytes, message: str) -> None:
    with pytest.raises(CarError, match=message):
        asyncio.run(_read_car(prefix))


def test_dag_pb_and_unixfs_read_protobuf_varints() -> None:
    # Type (field 1) = file, spelled in two bytes: protobuf allows it, as Kubo does.
    assert decode_unixfs(b"\x08\x82\x00").type == 2
    with pytest.raises(DagError, match=r"^UnixFS data: varint longer than 10 bytes at byte 1$"):
        decode_unixfs(b"\x08" + b"\xff" * 10 + b"\x01")
    with pytest.raises(DagError, match=r"^dag-pb node: truncated varint at byte 1$"):
        decode_pbnode(b"\x0a\x80")
