"""ThreatExchange plain/CSV and TCAP JSON parsing from small inline samples."""

from __future__ import annotations

import json

import pytest

from agent.lists.formats.plain import parse_plain
from agent.lists.formats.tcap import apply_tcap_page, parse_tcap_page
from agent.lists.formats.te_csv import parse_te_csv
from agent.lists.limits import ParseLimits, TooLarge
from agent.lists.model import HashList
from agent.model.signals import SignalType

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "0a21c3d4e5f60718293a4b5c6d7e8f90"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_plain_type_value_lines_with_comments_and_problems() -> None:
    text = "\n".join(
        [
            "# HMA export",  # 1
            f"pdq {PDQ.upper()}",  # 2: upper-case is normalised
            "",  # 3
            f"md5 {MD5} violent extremism",  # 4: trailing words are labels
            "md5 0a21",  # 5: too short
            f"tmk {PDQ}",  # 6: unknown type
            f"sha256 {SHA256}",  # 7
            "phash 0123456789abcdef",  # 8
        ]
    )
    result = parse_plain(text, list_name="hma", source="hma.txt")
    assert [(e.signal_type, e.value, e.line) for e in result.entries] == [
        (SignalType.PDQ, PDQ, 2),
        (SignalType.MD5, MD5, 4),
        (SignalType.SHA256, SHA256, 7),
        (SignalType.PHASH, "0123456789abcdef", 8),
    ]
    assert result.entries[1].labels == ("violent", "extremism")
    assert result.entries[0].entry_id == f"pdq:{PDQ}" and result.entries[0].list_name == "hma"
    assert [(p.source, p.line) for p in result.problems] == [("hma.txt", 5), ("hma.txt", 6)]
    assert "32 hex chars" in result.problems[0].message


def test_plain_bare_values_need_the_type_from_the_caller() -> None:
    text = f"{PDQ}\n{PDQ[:-1]}x\n"
    result = parse_plain(text, list_name="l", source="pdq.txt", default_type=SignalType.PDQ)
    assert [e.value for e in result.entries] == [PDQ]
    assert [p.line for p in result.problems] == [2]
    untyped = parse_plain(text, list_name="l", source="pdq.txt")
    assert untyped.entries == () and len(untyped.problems) == 2


def test_plain_limits() -> None:
    text = f"md5 {MD5}\n" * 5
    result = parse_plain(text, list_name="l", source="s", limits=ParseLimits(max_entries=3))
    assert len(result.entries) == 3 and result.problems[0].line == 4
    long = parse_plain(
        "md5 " + "a" * 100 + f"\nmd5 {MD5}\n", list_name="l", source="s", limits=ParseLimits(max_line_length=50)
    )
    assert len(long.entries) == 1 and long.problems[0].line == 1
    with pytest.raises(TooLarge):
        parse_plain(b"x" * 11, list_name="l", source="s", limits=ParseLimits(max_bytes=10))


def test_csv_with_header_tags_and_bad_rows() -> None:
    text = "\n".join(
        [
            "signal_type,signal_str,collab,category,tags",  # 1
            f"pdq,{PDQ},GIFCT,terrorism,ideology:x  propaganda",  # 2
            f"md5,{MD5},,,",  # 3
            "md5,nothex,,,",  # 4
            "only-one-cell",  # 5
            f'sha256,"{SHA256}",TCAP,,',  # 6: quoted cell
        ]
    )
    result = parse_te_csv(text, list_name="te", source="te.csv")
    assert [(e.signal_type, e.line) for e in result.entries] == [
        (SignalType.PDQ, 2),
        (SignalType.MD5, 3),
        (SignalType.SHA256, 6),
    ]
    assert result.entries[0].labels == ("collab:GIFCT", "category:terrorism", "ideology:x", "propaganda")
    assert result.entries[1].labels == ()
    assert [(p.source, p.line) for p in result.problems] == [("te.csv", 4), ("te.csv", 5)]


def test_csv_without_header() -> None:
    result = parse_te_csv(f"md5,{MD5},c,cat,a b\n", list_name="te", source="te.csv")
    assert result.problems == () and result.entries[0].labels == ("collab:c", "category:cat", "a", "b")


def _page(results: list[dict[str, object]], nxt: str | None = None) -> str:
    return json.dumps({"count": len(results), "next": nxt, "checkpoint": "cp-2", "results": results})


def _record(i: int, algorithm: str, digest: str, deleted: bool = False) -> dict[str, object]:
    return {
        "id": i,
        "hash_digest": digest,
        "algorithm": algorithm,
        "ideology": "far-right",
        "file_type": "image",
        "deleted": deleted,
        "created_on": "2024-01-01T00:00:00Z",
        "updated_on": "2024-02-01T00:00:00Z",
    }


def test_tcap_page_parses_labels_ids_and_paging_fields() -> None:
    page = parse_tcap_page(
        _page(
            [
                _record(1, "PDQ", PDQ),
                _record(2, "MD5", MD5.upper()),
                _record(3, "TMK", "ab"),
                _record(4, "SHA256", "abc"),
            ],
            nxt="https://tcap.example/api?page=2",
        ),
        list_name="tcap",
        source="tcap-1.json",
    )
    assert [(e.entry_id, e.signal_type, e.value) for e in page.entries] == [
        ("tcap:1", SignalType.PDQ, PDQ),
        ("tcap:2", SignalType.MD5, MD5),
    ]
    assert page.entries[0].labels == ("ideology:far-right", "file_type:image")
    assert page.next == "https://tcap.example/api?page=2" and page.checkpoint == "cp-2" and page.count == 4
    assert [p.message.split(":")[0] for p in page.problems] == ["results[2] (id=3)", "results[3] (id=4)"]


def test_tcap_deletions_remove_entries_when_pages_are_applied() -> None:
    first = parse_tcap_page(
        _page([_record(1, "PDQ", PDQ), _record(2, "MD5", MD5), _record(3, "SHA256", SHA256)]),
        list_name="tcap",
        source="p1.json",
    )
    hash_list = apply_tcap_page(HashList("tcap"), first)
    assert {e.entry_id for e in hash_list.entries} == {"tcap:1", "tcap:2", "tcap:3"}
    second = parse_tcap_page(
        _page([_record(2, "MD5", MD5, deleted=True), _record(5, "PDQ", "0" * 64)]), list_name="tcap", source="p2.json"
    )
    assert second.entries[0].deleted
    hash_list = apply_tcap_page(hash_list, second)
    assert {e.entry_id for e in hash_list.entries} == {"tcap:1", "tcap:3", "tcap:5"}


def test_tcap_invalid_json_is_one_problem() -> None:
    page = parse_tcap_page("{not json", list_name="t", source="bad.json")
    assert page.entries == () and page.problems[0].source == "bad.json"
    assert parse_tcap_page("[" * 100_000, list_name="t", source="deep.json").problems


@pytest.mark.parametrize(
    "bad",
    [
        f"md5,{MD5[:10]}\r{MD5[10:]},,,",  # a stray CR inside a field
        f'md5,"{MD5},,,',  # an unterminated quote
        f'md5,"{MD5}"x,,,',  # text after a closing quote
    ],
)
def test_csv_malformed_row_is_reported_with_its_line_and_skipped(bad: str) -> None:
    text = f"md5,{MD5},,,\n{bad}\nsha256,{SHA256},,,\n"
    result = parse_te_csv(text, list_name="te", source="te.csv")
    assert [e.line for e in result.entries] == [1, 3]
    assert [(p.source, p.line) for p in result.problems] == [("te.csv", 2)]
    assert "malformed CSV row" in result.problems[0].message


def test_csv_fields_over_the_csv_module_limit_are_a_problem_not_a_crash() -> None:
    # Lines may be allowed longer than the csv module's own field limit (128 KiB).
    huge = "x" * 200_000
    limits = ParseLimits(max_line_length=400_000)
    result = parse_te_csv(f"md5,{huge}\nmd5,{MD5}\n", list_name="te", source="te.csv", limits=limits)
    assert [e.line for e in result.entries] == [2]
    assert [p.line for p in result.problems] == [1]


def test_csv_nul_bom_and_mixed_newlines() -> None:
    data = ("\ufeff" + f"md5,{MD5}\r\n" + "md5,ab\x00cd\n" + f"\r\nsha256,{SHA256}\r\n").encode()
    result = parse_te_csv(data, list_name="te", source="te.csv")
    assert [(e.signal_type, e.line) for e in result.entries] == [(SignalType.MD5, 1), (SignalType.SHA256, 4)]
    assert [p.line for p in result.problems] == [2]
