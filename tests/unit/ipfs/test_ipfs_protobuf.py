"""The one protobuf reader, shared by dag-pb/UnixFS and IPNS records."""

from __future__ import annotations

import pytest

from agent.ipfs.errors import DagError
from agent.ipfs.protobuf import ProtobufError, ProtobufReader, field_bytes, field_varint, read_fields
from agent.sources.ipns_keys import MalformedRecord, _read_protobuf

KNOWN = {1: 2, 3: 0}


def test_fields_are_read_in_order_and_unknown_ones_skipped() -> None:
    buf = field_bytes(1, b"abc") + field_varint(3, 300) + field_varint(9, 1) + b"\x25" + b"\x01\x02\x03\x04"
    assert read_fields(buf, KNOWN, "msg") == {1: b"abc", 3: 300}


@pytest.mark.parametrize(
    ("buf", "message"),
    [
        (field_varint(3, 1) * 2, r"^msg: field 3 appears twice$"),
        (field_varint(1, 1), r"^msg: field 1 has wire type 0, expected 2$"),
        (b"\x0a\x05ab", r"^msg: field 1 declares 5 bytes, 2 remain$"),
        (b"\x00\x01", r"^msg: field number 0 at byte 1$"),
        (b"\x0b", r"^msg: field 1 uses wire type 3; only 0, 1, 2 and 5 exist"),
        (b"\x0d\x01\x02", r"^msg: truncated fixed32 field 1$"),
        (b"\x18" + b"\xff" * 10 + b"\x01", r"^msg: varint longer than 10 bytes at byte 1$"),
    ],
)
def test_malformed_messages_are_refused_in_the_callers_error_type(buf: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        read_fields(buf, KNOWN, "msg")
    with pytest.raises(MalformedRecord, match=message.replace("msg", "IpnsEntry")):
        _read_protobuf(buf, KNOWN, "IpnsEntry")


def test_a_reader_raises_the_error_it_was_given() -> None:
    reader = ProtobufReader(b"\x08", "dag-pb node", DagError)
    assert reader.key() == (1, 0)
    with pytest.raises(DagError, match=r"^dag-pb node: truncated varint at byte 1$"):
        reader.varint()
