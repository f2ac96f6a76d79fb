"""Scans that match hash lists and denylists: real media fixtures in DAGs served over loopback."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.config import ScanSettings, Settings
from agent.ipfs.dagpb import UnixFSType, encode_pbnode, encode_unixfs
from agent.lists.catalog import load_catalog
from agent.model.report import EXIT_ERROR, EXIT_FINDINGS, ItemStatus
from agent.pipeline import Scanner
from tests.conftest import IPFS_FIXTURES, MEDIA_FIXTURES
from tests.support.dagpb import cid_of
from tests.support.gateway import FixtureGateway
from tests.support.media import bomb_png
from tests.support.media_dag import expected_pdq, hamming, media_files, serve_files
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
ORIGINAL = "pdq/bridge-mods/aaa-orig.jpg"


async def test_edited_copies_match_the_original_at_their_true_distance_and_nothing_else_does(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    tsv = expected_pdq()
    original_pdq = tsv[ORIGINAL][0]
    # The list holds the original AND the exact hashes of every image whose PDQ
    # quality is under 50 (q0003, q0004, small.jpg): those must never match, even
    # at distance 0. (Other files in low-quality/ have quality 100 in the TSV.)
    low_quality = {path: value for path, value in tsv.items() if value[1] < 50}
    assert len(low_quality) == 3
    listing = tmp_path / "original.txt"
    listing.write_text(f"pdq {original_pdq}\n" + "".join(f"pdq {pdq}\n" for pdq, _ in low_quality.values()))
    gw = await make_gateway()
    root = serve_files(gw, media_files("pdq/bridge-mods", "pdq/dihedral", "pdq/low-quality", "pdq/modes"))
    catalog = await load_catalog([str(listing)])

    report = await Scanner(Settings(), gateways=[gw.url], catalog=catalog).scan(f"ipfs://{root}")

    items = {i.path: i for i in report.items}
    assert len(items) == len(tsv) - 2  # every fixture image except exif-rotn-6.jpg and letterboxed
    for path, item in items.items():
        assert item.status == ItemStatus.VERIFIED, (path, item.error)
        pdq, quality = tsv[path]
        assert item.signals.to_view()["pdq"] == pdq and item.signals.to_view()["pdq_quality"] == quality
        distance = hamming(pdq, original_pdq)
        pdq_findings = [f for f in (x.to_view() for x in item.findings) if f["signal_type"] == "pdq"]
        if quality < 50:
            assert pdq_findings == [], f"{path} has quality {quality} and must never match"
        elif distance <= 31:
            assert [(f["list"], f["entry"], f["distance"]) for f in pdq_findings] == [
                ("original", original_pdq, distance)
            ], path
        else:
            assert pdq_findings == [], f"{path} is {distance} bits away"
    assert all(items[f"pdq/bridge-mods/{p.name}"].findings for p in (MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir())
    rotated = [i for p, i in items.items() if "rotate" in p or "flip" in p]
    assert len(rotated) == 7 and not any(i.findings for i in rotated)
    assert all(i.findings for p, i in items.items() if p.startswith("pdq/modes/"))
    assert report.exit_code() == EXIT_FINDINGS
    assert report.lists == [
        {"name": "original", "source": str(listing), "entries": 1 + len(low_quality), "deny_rules": 0, "problems": 0}
    ]


async def test_a_video_matches_a_vpdq_list_entry_of_the_same_scene_and_not_of_another(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    lists = tmp_path / "videos"
    lists.mkdir()
    for name in ("chair-20-sd-bar", "doorknob-hd-no-bar"):
        (lists / f"{name}.txt").write_bytes((MEDIA_FIXTURES / "vpdq-hashes" / f"{name}.txt").read_bytes())
    gw = await make_gateway()
    root = serve_files(gw, media_files("video/chair-19-sd-bar.mp4", "video/pattern-sd-grey-bar.mp4"))
    catalog = await load_catalog([str(lists)])
    report = await Scanner(Settings(), gateways=[gw.url], catalog=catalog).scan(str(root))
    items = {i.path: i for i in report.items}
    chair = items["video/chair-19-sd-bar.mp4"]
    assert chair.media_type == "video/mp4" and chair.signals.to_view()["vpdq"]["frames"] > 10
    (found,) = [f.to_view() for f in chair.findings]
    assert found["signal_type"] == "vpdq" and found["distance"] >= 80.0
    assert found["entry_id"] == "vpdq:" + hashlib.sha256((lists / "chair-20-sd-bar.txt").read_bytes()).hexdigest()
    assert items["video/pattern-sd-grey-bar.mp4"].findings == []
    assert report.exit_code() == EXIT_FINDINGS


async def test_corrupt_bomb_empty_and_undecodable_media_are_per_item_errors_and_the_scan_goes_on(
    make_gateway: MakeGateway,
) -> None:
    photo = (MEDIA_FIXTURES / ORIGINAL).read_bytes()
    video = (MEDIA_FIXTURES / "video" / "doorknob-hd-no-bar.mp4").read_bytes()
    files = {
        "a-truncated.jpg": photo[:5000],
        "b-bomb.png": bomb_png(30_000),
        "c-empty.jpg": b"",
        "d-garbage.mp4": video[:64] + bytes(range(256)) * 40,
        "e-good.jpg": photo,
    }
    gw = await make_gateway()
    root = serve_files(gw, files)
    report = await Scanner(Settings(), gateways=[gw.url]).scan(str(root))
    items = {i.path: i for i in report.items}
    assert items["a-truncated.jpg"].status == ItemStatus.ERROR and "image/jpeg" in (
        items["a-truncated.jpg"].error or ""
    )
    assert "30000x30000" in (items["b-bomb.png"].error or "") and items["b-bomb.png"].status == ItemStatus.ERROR
    assert items["c-empty.jpg"].media_type == "inode/x-empty" and items["c-empty.jpg"].size == 0
    assert items["c-empty.jpg"].signals.to_view()["sha256"] == hashlib.sha256(b"").hexdigest()
    assert items["d-garbage.mp4"].status == ItemStatus.ERROR and items["d-garbage.mp4"].error
    # digests are still reported for what could not be decoded
    assert items["a-truncated.jpg"].signals.to_view()["md5"] == hashlib.md5(photo[:5000]).hexdigest()
    assert items["e-good.jpg"].status == ItemStatus.VERIFIED
    assert items["e-good.jpg"].signals.to_view()["pdq"] == expected_pdq()[ORIGINAL][0]
    assert report.exit_code() == EXIT_ERROR


async def test_denylisted_cid_and_path_are_findings_and_are_never_fetched(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    # A file added the way nopfs-test.deny's rule1 was: `echo -n rule1 | ipfs add --raw-leaves=false`.
    rule1 = encode_pbnode([], encode_unixfs(UnixFSType.FILE, data=b"rule1", filesize=5))
    rule1_cid = cid_of(rule1)
    assert str(rule1_cid) == "bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq"
    builder = UnixFSBuilder()
    secret = builder.add_directory({"x.txt": builder.add_file(b"x"), "y.txt": builder.add_file(b"y")})
    root, _ = builder.add_directory(
        {"hello.txt": builder.add_file(b"hello world\n"), "rule1": (rule1_cid, 5), "secret": secret}
    )
    gw = await make_gateway()
    gw.add_blocks([*builder.blocks, (rule1_cid, rule1)])
    own = tmp_path / "own.deny"
    own.write_text(f"/ipfs/{root}/secret/*\n")
    catalog = await load_catalog([str(IPFS_FIXTURES / "denylists" / "nopfs-test.deny"), str(own)])
    report = await Scanner(Settings(), gateways=[gw.url], catalog=catalog, hash_media=False).scan(str(root))

    items = {i.path: i for i in report.items}
    assert items["hello.txt"].status == ItemStatus.VERIFIED and items["hello.txt"].findings == []
    denied = items["rule1"]
    assert denied.status == ItemStatus.SKIPPED and "not fetched" in (denied.error or "")
    assert [(f["list"], f["signal_type"], f["entry"]) for f in (x.to_view() for x in denied.findings)] == [
        ("nopfs-test", "cid", "/ipfs/bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq")
    ]
    assert items["secret"].findings[0].to_view()["list"] == "own" and items["secret"].findings[0].on_path
    fetched = {cid for _fmt, cid, _scope in gw.log}
    assert str(rule1_cid) not in fetched and str(secret[0]) not in fetched
    assert report.exit_code() == EXIT_FINDINGS


async def test_fetch_denylisted_true_fetches_and_hashes_but_still_reports(make_gateway: MakeGateway) -> None:
    rule1 = encode_pbnode([], encode_unixfs(UnixFSType.FILE, data=b"rule1", filesize=5))
    gw = await make_gateway()
    gw.add_blocks([(cid_of(rule1), rule1)])
    catalog = await load_catalog([str(IPFS_FIXTURES / "denylists" / "nopfs-test.deny")])
    settings = Settings(scan=ScanSettings(fetch_denylisted=True))
    report = await Scanner(settings, gateways=[gw.url], catalog=catalog, hash_media=False).scan(str(cid_of(rule1)))
    assert report.findings and report.findings[0].entry.endswith("uoq")
    (item,) = report.items
    assert (
        item.status == ItemStatus.VERIFIED and item.signals.to_view()["sha256"] == hashlib.sha256(b"rule1").hexdigest()
    )


async def test_tcap_list_md5_matches_with_its_labels_and_deleted_entries_do_not(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    page = {
        "count": 2,
        "next": None,
        "checkpoint": "2026-11-01T00:00:00Z",
        "results": [
            {
                "id": 11,
                "hash_digest": hashlib.md5(b"hello world\n").hexdigest(),
                "algorithm": "MD5",
                "ideology": "far-right",
                "file_type": "text",
                "deleted": False,
                "created_on": "2026-01-01T00:00:00Z",
                "updated_on": "2026-01-01T00:00:00Z",
            },
            {
                "id": 12,
                "hash_digest": hashlib.md5(b"x").hexdigest(),
                "algorithm": "MD5",
                "ideology": "islamist",
                "file_type": "text",
                "deleted": True,
                "created_on": "2026-01-01T00:00:00Z",
                "updated_on": "2026-02-01T00:00:00Z",
            },
        ],
    }
    listing = tmp_path / "tcap.json"
    listing.write_text(json.dumps(page))
    gw = await make_gateway()
    root = serve_files(gw, {"hello.txt": b"hello world\n", "x.txt": b"x"})
    catalog = await load_catalog([str(listing)])
    report = await Scanner(Settings(), gateways=[gw.url], catalog=catalog, hash_media=False).scan(str(root))
    items = {i.path: i for i in report.items}
    (found,) = [f.to_view() for f in items["hello.txt"].findings]
    assert found["list"] == "tcap" and found["signal_type"] == "md5" and found["distance"] == 0
    assert found["entry_id"] == "tcap:11" and "far-right" in " ".join(found["labels"])
    assert items["x.txt"].findings == []


async def test_per_list_thresholds_from_config_change_the_outcome(make_gateway: MakeGateway, tmp_path: Path) -> None:
    from agent.config import ListSettings, ListThresholds
    from agent.pipeline import load_scan_catalog

    tsv = expected_pdq()
    listing = tmp_path / "strict.txt"
    listing.write_text(f"pdq {tsv[ORIGINAL][0]}\n")
    gw = await make_gateway()
    name = "pdq/bridge-mods/blur-a-lot.jpg"
    distance = hamming(tsv[name][0], tsv[ORIGINAL][0])
    assert 0 < distance <= 31
    root = serve_files(gw, media_files(name))

    async def findings(settings: Settings) -> list[dict[str, object]]:
        catalog = await load_scan_catalog(settings)
        report = await Scanner(settings, gateways=[gw.url], catalog=catalog).scan(str(root))
        return [f.to_view() for f in report.items[0].findings]

    loose = Settings(lists=ListSettings(sources=[str(listing)]))
    assert [f["distance"] for f in await findings(loose)] == [distance]
    strict = Settings(
        lists=ListSettings(sources=[str(listing)], thresholds={"strict": ListThresholds(pdq_distance=distance - 1)})
    )
    assert await findings(strict) == []
