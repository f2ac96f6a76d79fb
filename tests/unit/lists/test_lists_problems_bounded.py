"""A list of millions of malformed lines costs bounded memory (issue 9 item 7):
the first problems are kept, the rest only counted, in every collector."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from agent.lists.catalog import load_catalog
from agent.lists.formats.plain import parse_plain
from agent.lists.formats.tcap import parse_tcap_page
from agent.lists.formats.vpdq_text import parse_vpdq_file
from agent.lists.limits import MAX_PROBLEMS_KEPT, problem_total
from agent.lists.load import load_list

BAD_LINES = 60_000
# Kept problems (~100 x 250 B) plus parser state; the old code kept every
# problem, about 250 B each: 60,000 lines cost over 15 MB.
PEAK_BOUND = 6 * 1024 * 1024

T = TypeVar("T")


def _peak(work: Callable[[], T]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _bad_file(tmp_path: Path, name: str, line: bytes = b"md5 zz\n") -> Path:
    path = tmp_path / name
    path.write_bytes(b"sha256 " + b"a" * 64 + b"\n" + line * BAD_LINES)
    return path


def test_plain_parser_keeps_the_first_problems_and_counts_the_rest() -> None:
    data = b"bad line here\n" * BAD_LINES
    result, peak = _peak(lambda: parse_plain(data, list_name="l", source="bad.txt"))
    problems = result.problems
    assert len(problems) == MAX_PROBLEMS_KEPT
    assert problem_total(problems) == BAD_LINES
    assert [p.line for p in problems[:3]] == [1, 2, 3]  # the first ones, with their lines
    assert peak < PEAK_BOUND, peak  # peak-report


def test_load_list_and_the_catalog_stay_bounded(tmp_path: Path) -> None:
    first = _bad_file(tmp_path, "first.txt")
    second = _bad_file(tmp_path, "second.txt")
    loaded, peak = _peak(lambda: load_list(first))
    assert len(loaded.list.entries) == 1
    assert problem_total(loaded.problems) == BAD_LINES
    assert peak < PEAK_BOUND, peak  # peak-report

    catalog, peak = _peak(lambda: asyncio.run(load_catalog([str(first), str(second)])))
    assert len(catalog.problems) == MAX_PROBLEMS_KEPT
    assert catalog.problem_count == 2 * BAD_LINES
    assert [s.problems for s in catalog.summaries] == [BAD_LINES, BAD_LINES]
    assert peak < 2 * PEAK_BOUND, peak


def test_tcap_page_and_vpdq_file_problems_are_bounded() -> None:
    page = json.dumps({"results": [{"algorithm": "nope", "hash_digest": "x"}] * 50_000}).encode()
    result, _ = _peak(lambda: parse_tcap_page(page, list_name="t", source="p.json"))
    assert len(result.problems) == MAX_PROBLEMS_KEPT
    assert problem_total(result.problems) == 50_000

    frames = b"x\n" * BAD_LINES
    video, peak = _peak(lambda: parse_vpdq_file(frames, list_name="v", source="v.txt"))
    assert problem_total(video.problems) == BAD_LINES + 1  # + "no frames"
    assert peak < PEAK_BOUND, peak  # peak-report


def test_csv_and_denylist_parsers_keep_the_first_problems_and_count_the_rest() -> None:
    from agent.lists.denylist.parser import parse_denylist
    from agent.lists.formats.te_csv import parse_te_csv

    csv_data = b"signal_type,signal_str,collab,category,tags\n" + b"md5,zz,c,x,\n" * BAD_LINES
    result, peak = _peak(lambda: parse_te_csv(csv_data, list_name="c", source="bad.csv"))
    problems = result.problems
    assert len(problems) == MAX_PROBLEMS_KEPT
    assert problem_total(problems) == BAD_LINES
    assert peak < PEAK_BOUND, peak

    deny_data = b"/ipfs/not-a-cid\n" * BAD_LINES
    parsed, peak = _peak(lambda: parse_denylist(deny_data, source="bad.deny"))
    assert len(parsed.problems) == MAX_PROBLEMS_KEPT
    assert problem_total(parsed.problems) == BAD_LINES
    assert peak < PEAK_BOUND, peak
