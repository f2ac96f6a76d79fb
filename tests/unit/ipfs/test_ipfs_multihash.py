"""The one multihash splitter and the one hash-function table, and the callers that share them."""

from __future__ import annotations

import hashlib

import blake3
import pytest
from multiformats import CID, multibase

from agent.ipfs.cid import cid_from_prefix
from agent.ipfs.errors import InvalidCid, InvalidMultihash
from agent.ipfs.multihash import (
    BLAKE3,
    HASH_FUNCTIONS,
    SHA2_256,
    encode_multihash,
    read_multihash_header,
    split_multihash,
)
from agent.lists.denylist import multihash as deny_mh
from agent.sources.ipns_keys import InvalidName, parse_ipns_name

DIGEST = hashlib.sha256(b"hello").digest()
SHA_MH = b"\x12\x20" + DIGEST


def test_a_multihash_splits_into_its_code_and_digest() -> None:
    assert split_multihash(SHA_MH) == (SHA2_256, DIGEST)
    assert split_multihash(memoryview(SHA_MH)) == (SHA2_256, DIGEST)
    assert split_multihash(encode_multihash(0xB220, b"\x01" * 32)) == (0xB220, b"\x01" * 32)
    assert encode_multihash(SHA2_256, DIGEST) == SHA_MH


def test_the_header_reader_finds_a_multihash_inside_a_longer_buffer() -> None:
    assert read_multihash_header(b"\x01\x55" + SHA_MH + b"tail", 2) == (SHA2_256, 32, 4)


@pytest.mark.parametrize(
    ("mh", "message"),
    [
        (SHA_MH[:-1], r"^multihash declares a 32-byte digest but carries 31$"),
        (SHA_MH + b"\x00", r"^multihash declares a 32-byte digest but carries 33$"),
        (b"", r"^truncated multihash function code$"),
        (b"\x12", r"^truncated multihash digest length$"),
        (b"\x92\x00\x20" + DIGEST, r"^multihash function code is not minimally encoded$"),
        (b"\x12\xa0\x00" + DIGEST, r"^multihash digest length is not minimally encoded$"),
    ],
)
def test_anything_but_exactly_one_multihash_is_refused(mh: bytes, message: str) -> None:
    with pytest.raises(InvalidMultihash, match=message) as info:
        split_multihash(mh)
    # An InvalidCid to the IPFS code, a ValueError to the denylist parser.
    assert isinstance(info.value, InvalidCid) and isinstance(info.value, ValueError)


def test_the_denylist_uses_the_one_splitter_and_the_one_table() -> None:
    # The module binds agent.ipfs's functions (no exports of them: it uses them, it does not offer them).
    namespace = vars(deny_mh)
    assert namespace["split_multihash"] is split_multihash and namespace["encode_multihash"] is encode_multihash
    assert deny_mh.double_hash(SHA2_256, b"x") == encode_multihash(SHA2_256, hashlib.sha256(b"x").digest())
    assert deny_mh.double_hash(BLAKE3, b"x") == encode_multihash(BLAKE3, blake3.blake3(b"x").digest())
    assert set(HASH_FUNCTIONS) >= deny_mh.SUPPORTED_DOUBLE_HASH_CODES
    with pytest.raises(KeyError):  # in the table, but not a double-hash function of IPIP-383
        deny_mh.double_hash(0x13, b"x")


# The identity multihash of an Ed25519 libp2p key (a peer ID "12D3KooW..."), with its
# digest length spelled in two bytes: go-multihash (and so go-libp2p's peer.Decode)
# refuses it, as every CID reader does.
_KEY = b"\x08\x01\x12\x20" + b"\x07" * 32
_NON_MINIMAL = b"\x00" + bytes([0x80 | len(_KEY), 0x00]) + _KEY


def test_every_caller_refuses_a_non_minimal_multihash() -> None:
    assert parse_ipns_name(multibase.encode(b"\x00" + bytes([len(_KEY)]) + _KEY, "base58btc")[1:]).inlined_key == _KEY
    with pytest.raises(InvalidName, match="malformed multihash: multihash digest length is not minimally encoded"):
        parse_ipns_name(multibase.encode(_NON_MINIMAL, "base58btc")[1:])
    with pytest.raises(ValueError, match="not minimally encoded"):
        deny_mh.decode_b58_multihash(multibase.encode(b"\x92\x00\x20" + DIGEST, "base58btc")[1:])
    with pytest.raises(InvalidCid, match="multihash function code is not minimally encoded"):
        cid_from_prefix(b"\x01\x55\x92\x00\x20" + DIGEST)
    assert cid_from_prefix(b"\x01\x55" + SHA_MH)[0] == CID("base32", 1, "raw", SHA_MH)
