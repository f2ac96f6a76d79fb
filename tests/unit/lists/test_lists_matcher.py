"""MatchIndex with the PDQ reference images' hashes (from expected-pdq.tsv,
produced by pdqhash on the fixture images, not by this project)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList, ListEntry
from agent.model.signals import Signal, SignalType
from tests.conftest import FIXTURES as FIXTURES_ROOT

PDQ_DIR = FIXTURES_ROOT / "media" / "pdq"
ORIG = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def expected_pdq() -> dict[str, tuple[str, int]]:
    rows: dict[str, tuple[str, int]] = {}
    for line in (PDQ_DIR / "expected-pdq.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, _mode, _size, pdq_hex, quality = line.split("\t")
        rows[path] = (pdq_hex, int(quality))
    return rows


TSV = expected_pdq()


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def pdq_list(name: str = "gifct", **thresholds: float) -> HashList:
    entry = ListEntry(name, SignalType.PDQ, ORIG, labels=("terrorism",), source="gifct.txt", line=1)
    return HashList(name, (entry,), **thresholds)  # type: ignore[arg-type]


def signal(path: str) -> Signal:
    pdq_hex, quality = TSV[path]
    return Signal(SignalType.PDQ, pdq_hex, quality)


def test_fixture_original_is_the_documented_hash() -> None:
    assert TSV["pdq/bridge-mods/aaa-orig.jpg"] == (ORIG, 100)


BRIDGE = sorted(p for p in TSV if p.startswith("pdq/bridge-mods/"))
DIHEDRAL = sorted(p for p in TSV if p.startswith("pdq/dihedral/") and "original" not in p)
LOW_QUALITY = sorted(p for p in TSV if p.startswith("pdq/low-quality/") and TSV[p][1] < 50)


@pytest.mark.parametrize("path", BRIDGE)
def test_bridge_edits_match_at_their_true_distance(path: str) -> None:
    index = MatchIndex([pdq_list()])
    (match,) = index.match([signal(path)])
    assert match.distance == hamming(ORIG, TSV[path][0]) <= 16
    assert (match.list_name, match.entry_id, match.entry_value) == ("gifct", f"pdq:{ORIG}", ORIG)
    assert match.labels == ("terrorism",) and match.signal == signal(path)
    assert (match.source, match.line) == ("gifct.txt", 1)


@pytest.mark.parametrize("path", DIHEDRAL)
def test_rotations_and_flips_do_not_match(path: str) -> None:
    assert hamming(ORIG, TSV[path][0]) > 100
    assert MatchIndex([pdq_list()]).match([signal(path)]) == []


@pytest.mark.parametrize("path", LOW_QUALITY)
def test_low_quality_hashes_never_match_even_at_distance_zero(path: str) -> None:
    pdq_hex, quality = TSV[path]
    low = HashList("low", (ListEntry("low", SignalType.PDQ, pdq_hex),))
    index = MatchIndex([low])
    assert index.match([Signal(SignalType.PDQ, pdq_hex, quality)]) == []
    # Same hash with a trusted quality matches, so the quality gate is what refused it.
    assert len(index.match([Signal(SignalType.PDQ, pdq_hex, 100)])) == 1


def test_pdq_without_quality_is_not_matched() -> None:
    assert MatchIndex([pdq_list()]).match([Signal(SignalType.PDQ, ORIG)]) == []


def test_per_list_thresholds_decide_per_list() -> None:
    edit = signal("pdq/bridge-mods/sharpen-a-lot.jpg")
    distance = hamming(ORIG, edit.value)
    strict = pdq_list("strict", pdq_distance=distance - 1)
    loose = pdq_list("loose")
    picky = pdq_list("picky", pdq_min_quality=101)
    matches = MatchIndex([strict, loose, picky]).match([edit])
    assert [m.list_name for m in matches] == ["loose"]
    assert [m.list_name for m in MatchIndex([replace(strict, pdq_distance=distance)]).match([edit])] == ["strict"]


MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_exact_md5_and_sha256() -> None:
    hash_list = HashList(
        "tcap",
        (
            ListEntry("tcap", SignalType.MD5, MD5, labels=("ideology:x",), entry_id="tcap:1"),
            ListEntry("tcap", SignalType.SHA256, SHA256, entry_id="tcap:2"),
        ),
    )
    index = MatchIndex([hash_list])
    matches = index.match(
        [
            Signal(SignalType.MD5, MD5.upper()),
            Signal(SignalType.SHA256, SHA256),
            Signal(SignalType.SHA256, "0" * 64),
            Signal(SignalType.SHA1, "0" * 40),
        ]
    )
    assert [(m.entry_id, m.distance, m.signal_type) for m in matches] == [
        ("tcap:1", 0, SignalType.MD5),
        ("tcap:2", 0, SignalType.SHA256),
    ]
    # An md5 value is not looked up as a sha256 even if a list had the same text.
    assert index.match([Signal(SignalType.SHA1, MD5 + "00000000")]) == []


def test_deleted_entries_never_match() -> None:
    hash_list = HashList(
        "l", (ListEntry("l", SignalType.MD5, MD5, deleted=True), ListEntry("l", SignalType.PDQ, ORIG, deleted=True))
    )
    index = MatchIndex([hash_list])
    assert len(index) == 0
    assert index.match([Signal(SignalType.MD5, MD5), Signal(SignalType.PDQ, ORIG, 100)]) == []


def test_64_bit_imagehash_uses_its_own_threshold() -> None:
    base = "8f373714acfcf4d0"
    near = f"{int(base, 16) ^ 0b1111111:016x}"  # 7 bits away
    far = f"{int(base, 16) ^ ((1 << 11) - 1):016x}"  # 11 bits away
    # Not matched by default (see test_lists_thresholds.py): this list opts in.
    hash_list = HashList("l", (ListEntry("l", SignalType.PHASH, base),), imagehash_distance={SignalType.PHASH: 10})
    index = MatchIndex([hash_list])
    assert [m.distance for m in index.match([Signal(SignalType.PHASH, near)])] == [7]
    assert index.match([Signal(SignalType.PHASH, far)]) == []
    assert index.match([Signal(SignalType.DHASH, base)]) == []  # other type, other index
    tight = replace(hash_list, imagehash_distance={SignalType.PHASH: 5})
    assert MatchIndex([tight]).match([Signal(SignalType.PHASH, near)]) == []


def test_malformed_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="malformed pdq query value"):
        MatchIndex([pdq_list()]).match([Signal(SignalType.PDQ, "xyz", 100)])
