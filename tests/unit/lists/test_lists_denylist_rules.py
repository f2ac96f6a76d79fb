"""Denylist parsing and matching beyond the reference fixture."""

from __future__ import annotations

import hashlib

import blake3
import pytest
from multiformats import CID

from agent.ipfs.multihash import encode_multihash
from agent.lists.denylist import Denylist, parse_denylist
from agent.lists.denylist.multihash import b58_multihash
from agent.lists.limits import ParseLimits, TooLarge

CID_A = "bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq"
CID_A_V0 = "QmesfgDQ3q6prBy2Kg2gKbW4MAGuWiRP2DVuGA5MZSERLo"
CID_B = "QmdWFA9FL52hx3j9EJZPQP1ZUH8Ygi5tLCX2cRDs6knSf8"


def load(text: str) -> Denylist:
    parsed = parse_denylist(text, source="test.deny")
    assert parsed.problems == ()
    return Denylist(parsed.rules)


def test_header_fields_and_hints_are_read() -> None:
    parsed = parse_denylist(
        'version: 1\nname: "My list"\nauthor: abuse@example.com\nhints:\n  gateway_status: 410\n---\n'
        f"/ipfs/{CID_A} reason=csam\n",
        source="h.deny",
    )
    assert parsed.header.name == "My list"
    assert parsed.header.author == "abuse@example.com"
    assert dict(parsed.header.hints) == {"gateway_status": "410"}
    (rule,) = parsed.rules
    # Every rule carries the header hints plus its own.
    assert dict(rule.hints) == {"gateway_status": "410", "reason": "csam"}
    assert rule.line == 7


def test_list_without_header_or_with_only_separator() -> None:
    assert load(f"/ipfs/{CID_A}\n").check_cid(CID_A_V0) is not None
    parsed = parse_denylist(f"---\n/ipfs/{CID_A}\n", source="s.deny")
    assert parsed.problems == () and parsed.rules[0].line == 2


def test_unsupported_version_loads_nothing() -> None:
    parsed = parse_denylist(f"version: 2\n---\n/ipfs/{CID_A}\n", source="v2.deny")
    assert parsed.rules == ()
    assert "unsupported denylist version 2" in parsed.problems[0].message


def test_malformed_lines_are_reported_with_line_numbers_and_skipped() -> None:
    text = "\n".join(
        [
            "version: 1",
            "---",
            "/ipfs/not-a-cid",  # line 3
            f"/ipfs/{CID_A}",  # line 4: still loaded after the bad line
            "//zzzz",  # line 5: neither base58 multihash nor hex
            "ipfs/missing-leading-slash",  # line 6
            f"/ipfs/{CID_B}/*",  # line 7
        ]
    )
    parsed = parse_denylist(text, source="bad.deny")
    assert [(p.source, p.line) for p in parsed.problems] == [("bad.deny", 3), ("bad.deny", 5), ("bad.deny", 6)]
    assert [r.line for r in parsed.rules] == [4, 7]
    dl = Denylist(parsed.rules)
    assert dl.check_cid(CID_A) is not None and dl.check_path(CID_B, "x") is not None


def test_decision_names_file_line_and_rule() -> None:
    dl = load(f"# comment\n\n/ipfs/{CID_A}\n")
    decision = dl.check_cid(CID_A_V0)
    assert decision is not None and decision.blocked
    assert (decision.source, decision.line, decision.rule.raw) == ("test.deny", 3, f"/ipfs/{CID_A}")


def test_later_rule_wins_so_block_after_exception_blocks() -> None:
    # From the spec: the deny rule after the allow rule keeps the name blocked.
    dl = load("!/ipns/my.domain\n/ipns/my.domain\n")
    decision = dl.check_ipns("my.domain")
    assert decision is not None and decision.blocked and decision.line == 2
    dl2 = load("/ipns/my.domain\n!/ipns/my.domain\n")
    decision2 = dl2.check_ipns("my.domain")
    assert decision2 is not None and not decision2.blocked


def test_cid_rule_matches_any_cid_with_the_same_multihash() -> None:
    raw_codec = str(CID.decode(CID_A).set(codec="raw").encode("base32"))
    base36 = str(CID.decode(CID_A).encode("base36"))
    dl = load(f"/ipfs/{CID_A_V0}\n")
    for form in (CID_A, raw_codec, base36, CID_A_V0):
        decision = dl.check_cid(form)
        assert decision is not None and decision.blocked, form


def test_modern_double_hash_rule_built_like_the_spec_says() -> None:
    # //base58(sha256-multihash("<base58 multihash>/my/path")) blocks exactly that path.
    mh = bytes(CID.decode(CID_A).digest)
    anchor = b58_multihash(encode_multihash(0x12, hashlib.sha256(f"{b58_multihash(mh)}/my/path".encode()).digest()))
    dl = load(f"//{anchor}\n")
    assert dl.check_path(CID_A, "/my/path/") is not None
    assert dl.check_path(CID_A_V0, "my/path") is not None
    assert dl.check_path(CID_A, "my/path2") is None
    assert dl.check_cid(CID_A) is None


def test_blake3_double_hash_of_a_cid() -> None:
    mh = bytes(CID.decode(CID_A).digest)
    anchor = b58_multihash(encode_multihash(0x1E, blake3.blake3(b58_multihash(mh).encode()).digest()))
    dl = load(f"//{anchor}\n")
    assert dl.check_cid(CID_A_V0) is not None


def test_legacy_double_hash_of_dnslink_with_path() -> None:
    anchor = hashlib.sha256(b"bad.example/some/page").hexdigest()
    dl = load(f"//{anchor}\n")
    assert dl.check_ipns("bad.example", "some/page") is not None
    assert dl.check_ipns("bad.example") is None


def test_inlined_dnslink_names_are_normalised_both_ways() -> None:
    dl = load("/ipns/my-site.example.com\n")
    assert dl.check_ipns("my--site-example-com") is not None
    assert dl.check_ipns("MY-SITE.EXAMPLE.COM") is not None
    assert dl.check_ipns("my-site-example-com") is None  # = my.site.example.com


def test_identity_and_empty_cids_are_never_blocked_even_by_prefix_rules() -> None:
    dl = load("/ipfs/bafkqaaa/*\n/ipfs/bafyaabakaieac\n/ipfs/bafkqabtimvwgy3yk\n")
    assert dl.check_cid("bafkqaaa") is None
    assert dl.check_path("bafkqaaa", "x") is None
    assert dl.check_cid("bafyaabakaieac") is None
    assert dl.check_cid("bafkqabtimvwgy3yk") is None  # identity CID of "hello\n"


def test_subpath_rule_applies_under_any_root() -> None:
    dl = load("/wp-admin/*\n")
    assert dl.check("/ipfs/" + CID_A + "/wp-admin/x.php") is not None
    assert dl.check("/ipns/site.example/wp-admin") is not None
    assert dl.check("/ipfs/" + CID_A + "/blog") is None


def test_percent_encoded_rule_paths_match_decoded_paths() -> None:
    dl = load(f"/ipfs/{CID_A}/my%20photo.jpg\n")
    assert dl.check_path(CID_A, "my photo.jpg") is not None


def test_invalid_cid_query_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(ValueError, match="not a CID: 'not-a-cid'"):
        load(f"/ipfs/{CID_A}\n").check_cid("not-a-cid")


def test_limits_bound_lines_entries_and_size() -> None:
    long_line = "/ipfs/" + "a" * 200
    parsed = parse_denylist(
        f"{long_line}\n/ipfs/{CID_A}\n/ipfs/{CID_B}\n/ipfs/{CID_A_V0}\n",
        source="l.deny",
        limits=ParseLimits(max_bytes=10_000, max_line_length=100, max_entries=2),
    )
    assert [r.line for r in parsed.rules] == [2, 3]
    assert [p.line for p in parsed.problems] == [1, 4]
    with pytest.raises(TooLarge):
        parse_denylist("x" * 101, source="big.deny", limits=ParseLimits(max_bytes=100))
