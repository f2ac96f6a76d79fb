"""Denylist checks on hostile names, and the entry ids findings carry."""

from __future__ import annotations

import hashlib

from multiformats import multibase, varint

from agent.lists.denylist import Denylist, DenyRule, migrated_entry_id, parse_denylist, public_source

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


def _rule(text: str, source: str) -> DenyRule:
    (rule,) = parse_denylist(f"{text}\n", source=source).rules
    return rule


def test_entry_id_is_list_name_and_rule_hash_not_the_path_or_line_or_hints() -> None:
    rule = f"/ipfs/{CID_A}"
    expected = "my:" + hashlib.sha256(rule.encode()).hexdigest()[:16]
    assert _rule(rule, "/home/op/my.deny").entry_id == expected
    assert _rule(f"{rule} reason=x", "lists/../my.deny").entry_id == expected
    assert _rule(f"!{rule}", "my.deny").entry_id != expected  # an exception is another rule
    assert _rule(f"/ipfs/{CID_A}/x", "my.deny").entry_id != expected


def test_public_source_keeps_no_folder_credentials_or_query() -> None:
    assert public_source("/home/op/private/my.deny") == "my.deny"
    assert public_source("C:\\Users\\op\\my.deny") == "my.deny"
    assert (
        public_source("https://user:pw@lists.example:8443/d/bad.deny?token=s3cret#x")
        == "https://lists.example:8443/d/bad.deny"
    )


def test_old_path_and_line_ids_map_to_the_new_ids_so_suppressions_carry_over() -> None:
    raw = f"/ipfs/{CID_A} reason=x"
    new = _rule(raw, "/home/op/my.deny").entry_id
    assert migrated_entry_id("my", "/home/op/my.deny:2", raw, "cid") == new
    assert migrated_entry_id("my", "./lists/../my.deny:17", raw, "path") == new
    assert (
        migrated_entry_id("bad", "https://lists.example/d/bad.deny:3", raw, "cid")
        == _rule(raw, "https://lists.example/d/bad.deny").entry_id
    )
    # Not old denylist ids: hash-list ids, other lists, ids already migrated.
    assert migrated_entry_id("tcap", "tcap:11", "0a21c3d4e5f60718293a4b5c6d7e8f90", "md5") is None
    assert migrated_entry_id("my", "other.deny:2", raw, "cid") is None
    assert migrated_entry_id("my", new, raw, "cid") is None
