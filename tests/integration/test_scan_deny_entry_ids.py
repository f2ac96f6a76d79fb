"""A denylist finding's entry_id is the list name plus a hash of the rule: the
same however the list's path was given and wherever its line moved, and it
names nothing of the operator's file system (issue 8 item 17)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.lists.catalog import load_catalog
from agent.pipeline import Scanner
from tests.support.gateway import FixtureGateway
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


async def _deny_findings(gw: FixtureGateway, root: str, list_path: str) -> list[dict[str, Any]]:
    catalog = await load_catalog([list_path])
    report = await Scanner(Settings(), gateways=[gw.url], catalog=catalog, hash_media=False).scan(root)
    return [f.to_view() for item in report.items for f in item.findings]


async def test_entry_ids_are_list_name_and_rule_hash_whatever_the_path_or_line(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    builder = UnixFSBuilder()
    bad = builder.add_file(b"denylisted bytes")
    root, _ = builder.add_directory({"ok.txt": builder.add_file(b"fine"), "bad.bin": bad})
    gw = await make_gateway()
    gw.add_blocks(builder.blocks)
    rule = f"/ipfs/{bad[0]}"
    folder = tmp_path / "operator-private-folder"
    folder.mkdir()
    (folder / "my.deny").write_text(f"{rule} reason=test\n")
    (folder / "moved").mkdir()
    (folder / "moved" / "my.deny").write_text(f"# a comment pushes the rule down\n\n{rule}\n")

    spellings = [str(folder / "my.deny"), str(folder / "moved" / ".." / "my.deny"), str(folder / "moved" / "my.deny")]
    found = [await _deny_findings(gw, str(root), path) for path in spellings]

    expected = "my:" + hashlib.sha256(rule.encode()).hexdigest()[:16]
    assert [[f["entry_id"] for f in fs] for fs in found] == [[expected]] * 3
    for fs in found:
        (f,) = fs
        assert f["list"] == "my" and f["list_source"] == "my.deny"
        assert "operator-private-folder" not in repr(f) and str(tmp_path) not in repr(f)
    assert [fs[0]["list_line"] for fs in found] == [1, 1, 3]


async def test_rules_from_a_list_directory_carry_the_directory_s_list_name(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    # A directory source is one list (its hash entries are named after it); its
    # denylist findings must be too, or a webhook subscribed to that list never
    # gets them and one subscribed to the file's stem is refused as unknown.
    builder = UnixFSBuilder()
    bad = builder.add_file(b"denylisted bytes")
    root, _ = builder.add_directory({"bad.bin": bad})
    gw = await make_gateway()
    gw.add_blocks(builder.blocks)
    folder = tmp_path / "partner-lists"
    folder.mkdir()
    (folder / "cids.deny").write_text(f"/ipfs/{bad[0]}\n")
    (folder / "hashes.txt").write_text("md5 " + hashlib.md5(b"other").hexdigest() + "\n")
    (finding,) = await _deny_findings(gw, str(root), str(folder))
    assert finding["list"] == "partner-lists"
    assert finding["entry_id"].startswith("partner-lists:")
