"""CID parsing: every spelling a user may paste, and clear refusals for the rest."""

from __future__ import annotations

import pytest

from agent.ipfs.cid import block_key, cid_from_prefix, parse_cid
from agent.ipfs.errors import InvalidCid

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
    "text, message",
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
