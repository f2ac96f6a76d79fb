"""CID parsing: every spelling a user may paste, and clear refusals for the rest."""

from __future__ import annotations

import pytest
from multiformats import CID, multibase

from agent.ipfs.cid import block_key, check_cid, cid_from_prefix, parse_cid
from agent.ipfs.errors import InvalidCid
from agent.ipfs.multihash import HASH_FUNCTIONS, verify_block
from agent.ipfs.varint import encode_uvarint

DIR_V1 = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


def test_v0_and_v1_of_the_same_block_share_a_block_key() -> None:
    v0 = parse_cid("QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk")
    v1 = v0.set(version=1)
    assert v0.version == 0 and v1.version == 1
    assert block_key(v0) == block_key(v1)


@pytest.mark.parametrize("base", ["base32", "base58btc", "base36", "base16"])
def test_every_common_multibase_spelling_parses_to_the_same_cid(base: str) -> None:
    cid = parse_cid(DIR_V1)
    assert parse_cid(cid.encode(base)) == cid


def test_printing_round_trips() -> None:
    assert str(parse_cid(DIR_V1)) == DIR_V1


def test_identity_cid_within_limit_is_accepted_and_inlines_its_bytes() -> None:
    empty = parse_cid("bafkqaaa")
    assert empty.hashfun.code == 0 and bytes(empty.raw_digest) == b""
    assert parse_cid("bafyaabakaieac").codec.name == "dag-pb"


def test_identity_cid_over_128_bytes_is_refused() -> None:
    from multiformats import CID, multihash

    big = CID("base32", 1, "raw", multihash.wrap(b"x" * 129, "identity"))
    with pytest.raises(InvalidCid, match="129 bytes inline"):
        parse_cid(str(big))
    ok = CID("base32", 1, "raw", multihash.wrap(b"x" * 128, "identity"))
    assert parse_cid(str(ok)) == ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not-a-cid", "not a CID"),
        ("bafy!!!", "not a valid CID"),
        ("Qm" + "1" * 44, "not a valid CID"),
        ("b" + "a" * 2000, "refusing"),
    ],
)
def test_malformed_cid_strings_give_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidCid, match=message):
        parse_cid(text)


def test_binary_cid_prefix_reports_its_length() -> None:
    cid = parse_cid(DIR_V1)
    raw = bytes(cid) + b"block bytes"
    parsed, length = cid_from_prefix(raw)
    assert parsed == cid and length == len(bytes(cid))


def test_truncated_binary_cid_is_refused() -> None:
    raw = bytes(parse_cid(DIR_V1))
    with pytest.raises(InvalidCid):
        cid_from_prefix(raw[:10])


# -- one set of rules for CIDs from text and from bytes (issue 9 items 8 and 9) --


def _binary(*varints: int, digest: bytes) -> bytes:
    return b"".join(encode_uvarint(v) for v in varints) + digest


_SHA = b"\x01" * 32
_GOOD = _binary(1, 0x55, 0x12, 32, digest=_SHA)
REFUSED = {
    "murmur3 (not cryptographic)": (_binary(1, 0x55, 0x22, 8, digest=b"\x01" * 8), "0x22"),
    "md5 (cannot be verified)": (_binary(1, 0x55, 0xD5, 16, digest=b"\x01" * 16), "0xd5"),
    "0-byte sha2-256 digest": (_binary(1, 0x55, 0x12, 0, digest=b""), "0 bytes is too short"),
    "1-byte sha2-256 digest": (_binary(1, 0x55, 0x12, 1, digest=b"\x01"), "1 bytes is too short"),
    "19-byte sha2-256 digest": (_binary(1, 0x55, 0x12, 19, digest=b"\x01" * 19), "19 bytes is too short"),
    "33-byte sha2-256 digest": (_binary(1, 0x55, 0x12, 33, digest=b"\x01" * 33), "longer than"),
    "non-IPLD codec (sha2-256 as codec)": (_binary(1, 0x12, 0x12, 32, digest=_SHA), "not an IPLD codec"),
    "non-IPLD codec (protobuf)": (_binary(1, 0x50, 0x12, 32, digest=_SHA), "not an IPLD codec"),
    "unknown codec": (_binary(1, 0x3FFFFF, 0x12, 32, digest=_SHA), "unknown multicodec"),
    "non-minimal version": (b"\x81\x00" + _GOOD[1:], "CID version is not minimally encoded"),
    "non-minimal codec": (b"\x01\xd5\x00" + _GOOD[2:], "CID codec is not minimally encoded"),
    "non-minimal hash code": (b"\x01\x55\x92\x00" + _GOOD[3:], "function code is not minimally encoded"),
    "non-minimal digest length": (b"\x01\x55\x12\xa0\x00" + _SHA, "digest length is not minimally encoded"),
    "version 2": (_binary(2, 0x55, 0x12, 32, digest=_SHA), "version 2"),
    "identity over 128 bytes": (_binary(1, 0x55, 0x00, 129, digest=b"x" * 129), "129 bytes inline"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_cid_refused_as_bytes_is_refused_as_text_with_the_same_reason(name: str) -> None:
    raw, reason = REFUSED[name]
    with pytest.raises(InvalidCid, match=reason):
        cid_from_prefix(raw + b"block bytes")
    with pytest.raises(InvalidCid, match=reason):
        parse_cid(multibase.encode(raw, "base32"))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_cid_object_made_by_a_library_meets_the_same_rules(name: str) -> None:
    raw, reason = REFUSED[name]
    try:  # what dag_cbor hands over for a tag-42 link: multiformats' own decoding
        made = CID.decode(raw)
    except (ValueError, KeyError, TypeError):  # multiformats raises ValueError subclasses and KeyError
        return  # the library refuses it already
    with pytest.raises(InvalidCid, match=reason):
        check_cid(made)


@pytest.mark.parametrize(
    "raw",
    [
        _GOOD,
        _binary(1, 0x70, 0x13, 64, digest=b"\x02" * 64),  # sha2-512, dag-pb
        _binary(1, 0x71, 0x1E, 32, digest=b"\x03" * 32),  # blake3, dag-cbor
        _binary(1, 0x55, 0x12, 20, digest=b"\x04" * 20),  # truncated to the 20-byte minimum
        _binary(1, 0x55, 0x00, 0, digest=b""),  # identity: empty inline block
        _binary(1, 0x72, 0x00, 36, digest=b"\x05" * 36),  # libp2p-key, as in IPNS names
    ],
)
def test_good_cids_are_accepted_from_bytes_text_and_objects_alike(raw: bytes) -> None:
    from_bytes, used = cid_from_prefix(raw)
    assert used == len(raw)
    assert parse_cid(multibase.encode(raw, "base32")) == from_bytes == check_cid(CID.decode(raw))


def test_every_hash_function_a_cid_may_use_can_be_verified() -> None:
    from multiformats import multicodec, multihash

    for code, function in HASH_FUNCTIONS.items():
        assert multicodec.get(code=code).name == function.name
        assert len(function.digest(b"x")) == function.size
        # The table's digest is the one multiformats computes: a CID it makes verifies.
        verify_block(CID("base32", 1, "raw", multihash.digest(b"x", function.name, size=function.size)), b"x")


def test_a_short_digest_never_verifies_any_bytes() -> None:
    from multiformats import multihash

    for digest in (b"", b"\xb9"):  # a 0-byte digest matches anything; 1 byte matches 1 in 256
        cid = CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256"))
        with pytest.raises(InvalidCid, match="too short"):
            verify_block(cid, b"any bytes a gateway likes")
