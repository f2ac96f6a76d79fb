"""vPDQ list entries from the reference per-frame output, matched with
agent.model.vpdq.match_videos against the reference pairwise ground truth."""

from __future__ import annotations

import csv

import pytest

from agent.lists.formats.vpdq_text import parse_vpdq_file
from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList, ListEntry
from agent.model.signals import SignalType
from tests.conftest import FIXTURES as FIXTURES_ROOT

VPDQ_DIR = FIXTURES_ROOT / "media" / "vpdq-hashes"
VIDEOS = sorted(p.stem for p in VPDQ_DIR.glob("*.txt"))


def video_entry(name: str, list_name: str = "videos") -> ListEntry:
    path = VPDQ_DIR / f"{name}.txt"
    result = parse_vpdq_file(path.read_bytes(), list_name=list_name, source=str(path))
    assert result.problems == ()
    (entry,) = result.entries
    return entry


def pairs() -> list[tuple[str, str, float, float]]:
    rows = []
    with (VPDQ_DIR / "pairwise-matches.tsv").open() as handle:
        lines = [line for line in handle if not line.startswith("frames(")]
    for row in csv.DictReader(lines, delimiter="\t"):
        if row["query"] in VIDEOS and row["compared"] in VIDEOS:
            rows.append((row["query"], row["compared"], float(row["q%"]), float(row["c%"])))
    return rows


PAIRS = pairs()


def test_entry_keeps_every_frame_and_a_content_id() -> None:
    entry = video_entry("chair-19-sd-bar")
    lines = [line for line in (VPDQ_DIR / "chair-19-sd-bar.txt").read_text().splitlines() if line.strip()]
    assert entry.signal_type is SignalType.VPDQ
    assert len(entry.frames) == len(lines)
    assert entry.frames[0].pdq_hex == lines[0].split(",")[2]
    assert len(entry.value) == 64 and entry.entry_id == f"vpdq:{entry.value}"


def test_bad_frame_lines_are_reported_and_skipped() -> None:
    good = (VPDQ_DIR / "doorknob-hd-no-bar.txt").read_text().splitlines()
    text = "\n".join([good[0], "1,100,nothex,0.033", good[1], "garbage"])
    result = parse_vpdq_file(text, list_name="v", source="bad.txt")
    assert len(result.entries[0].frames) == 2
    assert [(p.source, p.line) for p in result.problems] == [("bad.txt", 2), ("bad.txt", 4)]


def test_pairs_cover_matching_and_non_matching_videos() -> None:
    assert any(q >= 80 for _, _, q, _ in PAIRS) and any(q < 80 for _, _, q, _ in PAIRS)


@pytest.mark.parametrize(("query", "compared", "q_pct", "c_pct"), PAIRS, ids=[f"{q}-vs-{c}" for q, c, _, _ in PAIRS])
def test_match_video_agrees_with_reference_ground_truth(query: str, compared: str, q_pct: float, c_pct: float) -> None:
    listed = video_entry(compared)
    index = MatchIndex([HashList("videos", (listed,))])
    matches = index.match_video(video_entry(query).frames)
    if q_pct >= 80.0:
        (match,) = matches
        assert match.entry_id == listed.entry_id
        assert match.distance == pytest.approx(q_pct, abs=0.05)
        assert match.compared_percent == pytest.approx(c_pct, abs=0.05)
    else:
        assert matches == []


def test_per_list_vpdq_threshold() -> None:
    # chair-19 vs chair-20: 100% of query frames, 92.8% of the listed video's.
    listed = video_entry("chair-20-sd-bar")
    query = video_entry("chair-19-sd-bar").frames
    assert MatchIndex([HashList("v", (listed,), vpdq_compared_percent=95.0)]).match_video(query) == []
    assert len(MatchIndex([HashList("v", (listed,), vpdq_compared_percent=90.0)]).match_video(query)) == 1


def test_a_directory_of_vpdq_files_is_one_list_of_videos() -> None:
    from agent.lists.load import load_list

    result = load_list(VPDQ_DIR, name="tcap-videos")
    assert result.problems == ()
    assert len(result.list.entries) == len(VIDEOS) == 8
    assert {e.signal_type for e in result.list.entries} == {SignalType.VPDQ}
    index = MatchIndex([result.list])
    (match,) = index.match_video(video_entry("doorknob-hd-no-bar").frames)
    assert match.source.endswith("doorknob-hd-no-bar.txt") and match.distance == 100.0


def test_a_file_of_several_videos_is_one_entry_per_video() -> None:
    """Issue 8: `hash --format vpdq a.mp4 b.mp4` wrote one file that loaded as a
    single entry holding both videos' frames."""
    names = ["chair-19-sd-bar", "pattern-hd-no-bar"]
    text = "".join(f"# video: {n}.mp4\n" + (VPDQ_DIR / f"{n}.txt").read_text() for n in names)
    result = parse_vpdq_file(text, list_name="videos", source="videos.txt")
    assert result.problems == ()
    chair, pattern = result.entries
    assert [len(chair.frames), len(pattern.frames)] == [len(video_entry(n).frames) for n in names]
    assert (chair.line, pattern.line) == (1, len(chair.frames) + 2)  # each names its `# video:` line
    assert chair.value != pattern.value
    index = MatchIndex([HashList("videos", result.entries)])
    assert index.match_video(video_entry("doorknob-hd-no-bar").frames) == []
    # A near-copy matches its own video's entry only, with the reference share
    # of that video's frames (not of both videos').
    expected = {(q, c): (qp, cp) for q, c, qp, cp in PAIRS}
    (match,) = index.match_video(video_entry("chair-20-sd-bar").frames)
    assert match.line == chair.line
    assert (match.distance, match.compared_percent) == pytest.approx(
        expected[("chair-20-sd-bar", "chair-19-sd-bar")], abs=0.1
    )


def test_the_id_of_a_video_does_not_depend_on_its_name_or_neighbours() -> None:
    chair = (VPDQ_DIR / "chair-19-sd-bar.txt").read_text()
    one = parse_vpdq_file(f"# video: a.mp4\n{chair}", list_name="v", source="1.txt").entries
    two = parse_vpdq_file(
        f"# video: b.mp4\n{chair}# video: c.mp4\n{chair[:200]}", list_name="v", source="2.txt"
    ).entries
    assert one[0].value == two[0].value and len(two) == 2
