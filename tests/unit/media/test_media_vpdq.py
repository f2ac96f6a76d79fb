"""vPDQ text format and video comparison, checked against the reference outputs."""

from __future__ import annotations

import ast

import pytest

from agent.media.errors import VpdqFormatError
from agent.model.signals import VideoFrameHash
from agent.model.vpdq import comparable_frames, format_vpdq, match_videos, parse_vpdq_text
from tests.conftest import MEDIA_FIXTURES

MEDIA = MEDIA_FIXTURES
HASHES = MEDIA / "vpdq-hashes"
REFERENCE = {p.stem: parse_vpdq_text(p.read_text()) for p in sorted(HASHES.glob("*.txt"))}


def pairwise_rows() -> list[tuple[str, str, float, float]]:
    """Rows of pairwise-matches.tsv whose two videos both have reference hashes."""
    lines = (HASHES / "pairwise-matches.tsv").read_text().splitlines()
    rows = []
    for line in lines[2:]:
        query, compared, q_pct, c_pct = line.split("\t")
        if query in REFERENCE and compared in REFERENCE:
            rows.append((query, compared, float(q_pct), float(c_pct)))
    return rows


PAIRS = pairwise_rows()


def test_reference_files_round_trip_byte_for_byte() -> None:
    assert len(REFERENCE) == 8
    for name, frames in REFERENCE.items():
        text = (HASHES / f"{name}.txt").read_text()
        assert format_vpdq(frames) == text, name
    first = REFERENCE["chair-19-sd-bar"][1]
    assert first == VideoFrameHash(1, 100, "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c", 0.033)


def test_unique_quality_frame_counts_match_the_tsv_header() -> None:
    header = (HASHES / "pairwise-matches.tsv").read_text().splitlines()[0]
    counts = ast.literal_eval(header.split(":", 1)[1].strip())
    for name, frames in REFERENCE.items():
        assert len(comparable_frames(frames)) == counts[name], name


def test_enough_pairs_to_be_meaningful() -> None:
    assert len(PAIRS) == 12
    assert ("chair-19-sd-bar", "chair-20-sd-bar", 100.0, 92.8) in PAIRS


@pytest.mark.parametrize(("query", "compared", "q_pct", "c_pct"), PAIRS, ids=[f"{p[0]}~{p[1]}" for p in PAIRS])
def test_pairwise_matches_reproduced_from_reference_hashes(
    query: str, compared: str, q_pct: float, c_pct: float
) -> None:
    got_q, got_c = match_videos(REFERENCE[query], REFERENCE[compared])
    assert round(got_q, 1) == q_pct
    assert round(got_c, 1) == c_pct


def _frame(i: int, hex_value: str, quality: int = 100) -> VideoFrameHash:
    return VideoFrameHash(i, quality, hex_value, i / 30)


def _flip(bits: int) -> str:
    """A hash with the lowest `bits` bits set (distance `bits` from all zeros)."""
    return f"{(1 << bits) - 1:064x}"


def test_distance_threshold_is_inclusive() -> None:
    zero = [_frame(0, _flip(0))]
    assert match_videos(zero, [_frame(0, _flip(31))]) == (100.0, 100.0)
    assert match_videos(zero, [_frame(0, _flip(32))]) == (0.0, 0.0)
    assert match_videos(zero, [_frame(0, _flip(32))], distance=32) == (100.0, 100.0)


def test_duplicates_count_once_and_low_quality_frames_are_ignored() -> None:
    query = [_frame(0, _flip(0)), _frame(1, _flip(0)), _frame(2, _flip(200))]
    compared = [_frame(0, _flip(1)), _frame(1, _flip(100), quality=49), _frame(2, _flip(150))]
    # query: {0, 200}; compared (quality >= 50): {1, 150} -> 0~1 matches.
    assert match_videos(query, compared) == (50.0, 50.0)
    # With the quality floor lowered, the 100-bit frame is compared too (and matches nothing).
    assert match_videos(query, compared, quality=0) == pytest.approx((50.0, 100 / 3))


def test_nothing_comparable_scores_zero_instead_of_dividing_by_zero() -> None:
    low = [_frame(0, _flip(0), quality=10)]
    assert match_videos(low, REFERENCE["doorknob-hd-no-bar"]) == (0.0, 0.0)
    assert match_videos([], []) == (0.0, 0.0)


def test_large_inputs_are_compared_in_chunks_with_the_same_result() -> None:
    chair = REFERENCE["chair-22-sd-grey-bar"] * 3  # > 1024 rows, duplicates dedupe away
    assert match_videos(chair, REFERENCE["chair-19-sd-bar"]) == match_videos(
        REFERENCE["chair-22-sd-grey-bar"], REFERENCE["chair-19-sd-bar"]
    )
    distinct = [_frame(i, f"{i:064x}") for i in range(2500)]
    assert match_videos(distinct, distinct[:10], distance=0) == pytest.approx((0.4, 100.0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,100,abc,0.000", "64 hex"),
        ("0,100," + "g" * 64 + ",0.000", "64 hex"),
        ("0,100," + "a" * 64, "got 3 fields"),
        ("x,100," + "a" * 64 + ",0.0", "non-numeric"),
        ("0,101," + "a" * 64 + ",0.0", "out of range"),
        ("\n0,100," + "a" * 64 + ",0.0\n-1,100," + "a" * 64 + ",0.0", "line 3"),
    ],
)
def test_malformed_lines_are_rejected_with_their_line_number(text: str, message: str) -> None:
    with pytest.raises(VpdqFormatError, match=message):
        parse_vpdq_text(text)


def test_upper_case_hashes_are_normalised_and_blank_lines_skipped() -> None:
    frames = parse_vpdq_text("\n0,90," + "AB" * 32 + ",1.5\n\n")
    assert frames == [VideoFrameHash(0, 90, "ab" * 32, 1.5)]
    assert format_vpdq(frames) == "0,90," + "ab" * 32 + ",1.500\n"
