"""Denylist checks on hostile names, and the entry ids findings carry."""

from __future__ import annotations

from multiformats import multibase, varint

from agent.lists.denylist import Denylist, parse_denylist

CID_A = "bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq"
# A modern double-hash rule (any valid base58 sha2-256 multihash will do).
DOUBLE = "//QmbK7LDv5NNBvYQzNfm2eED17SNLt1yNMapcUhSuNLgkqz"


def _b58_multihash_with_unknown_code() -> str:
    mh = bytes(varint.encode(0x1234)) + bytes([3]) + b"abc"
    return str(multibase.encode(mh, "base58btc"))[1:]


def test_check_ipns_with_double_hash_rules_and_an_unknown_hash_code_does_not_raise() -> None:
    # Issue 9 item 11: the legacy anchor needs a CID of the name's multihash,
    # and multiformats refuses unknown hash codes with a KeyError.
    dl = Denylist(parse_denylist(f"{DOUBLE}\n", source="t.deny").rules)
    assert dl.check_ipns(_b58_multihash_with_unknown_code()) is None
    assert dl.check(f"/ipns/{_b58_multihash_with_unknown_code()}/x") is None
