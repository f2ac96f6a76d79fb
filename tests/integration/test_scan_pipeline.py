"""Scanner over real fixture DAGs served by loopback trustless gateways."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent.config import LimitSettings, Settings
from agent.ipfs.cid import parse_cid
from agent.model.report import EXIT_CLEAN, EXIT_ERROR, ItemStatus
from agent.pipeline import Scanner
from tests.conftest import IPFS_FIXTURES
from tests.support.dagpb import cid_of, pbnode, unixfs
from tests.support.gateway import FixtureGateway

GC = IPFS_FIXTURES / "gateway-conformance"
DIR_WITH_FILES = GC / "path_gateway_unixfs" / "dir-with-files.car"
DIR_CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
HAMT = GC / "trustless_gateway_car" / "single-layer-hamt-with-multi-block-files.car"
MISSING = GC / "trustless_gateway_car" / "file-3k-and-3-blocks-missing-block.car"
TRUE_SHA256 = {
    "ascii-copy.txt": "aa033cd9700e72cdbb1071e533196d5587bcfe3c824473ec6aab8b4cb07b4cbb",
    "ascii.txt": "aa033cd9700e72cdbb1071e533196d5587bcfe3c824473ec6aab8b4cb07b4cbb",
    "hello.txt": hashlib.sha256(b"hello world\n").hexdigest(),
    "multiblock.txt": "998785f13287a9aabc2d7048e4c2905d502ff13ef40f2d135f163b5a762701c5",
}
MakeGateway = Callable[..., Awaitable[FixtureGateway]]


def settings(**limits: int) -> Settings:
    return Settings(limits=LimitSettings(**limits))


async def test_dir_with_files_scans_to_exactly_its_four_files_with_true_hashes(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(Settings(), gateways=[gw.url]).scan(f"ipfs://{DIR_CID}")
    assert report.root == DIR_CID
    assert {i.path: i.signals.to_view()["sha256"] for i in report.items} == TRUE_SHA256
    assert all(
        i.status == ItemStatus.VERIFIED and i.source.verified and i.source.gateway == gw.url for i in report.items
    )
    assert {i.path: i.media_type for i in report.items}["hello.txt"] == "text/plain"
    assert report.summary()["verified"] == 4 and report.exit_code() == EXIT_CLEAN


async def test_files_with_the_same_cid_are_fetched_once(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(Settings(), gateways=[gw.url], concurrency=1).scan(DIR_CID)
    copies = [i for i in report.items if i.path in ("ascii.txt", "ascii-copy.txt")]
    assert copies[0].cid == copies[1].cid
    assert sum(1 for i in copies if i.duplicate_of) == 1
    cid = parse_cid(copies[0].cid or "")
    fetched = [entry for entry in gw.log if parse_cid(entry[1]).digest == cid.digest]
    assert len(fetched) == 1


async def test_hamt_directory_enumerates_all_1000_entries(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(HAMT)
    report = await Scanner(Settings(), gateways=[gw.url]).scan(
        "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i"
    )
    assert len(report.items) == 1000
    assert {i.path for i in report.items} == {f"{n}.txt" for n in range(1, 1001)}
    assert all(i.status == ItemStatus.VERIFIED for i in report.items)


async def test_a_missing_block_makes_that_item_incomplete_and_the_rest_are_still_reported(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(DIR_WITH_FILES, MISSING)
    incomplete = parse_cid("QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk")
    hello = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")
    multiblock = parse_cid("zdj7WiWEsA4xt5Q2ipS7uXZej5i2E3U6GNz6mpoUTg5WkHABy")
    # A directory (built here, hashing correctly) holding the real incomplete file between two good ones.
    directory = pbnode(
        [(hello, "a-hello.txt", 12), (incomplete, "b-3k.bin", 3072), (multiblock, "c-multi.txt", 1026)], unixfs(1)
    )
    root = cid_of(directory)
    gw.add_blocks([(root, directory)])
    report = await Scanner(Settings(), gateways=[gw.url]).scan(f"ipfs://{root}")
    by_path = {i.path: i for i in report.items}
    assert list(by_path) == ["a-hello.txt", "b-3k.bin", "c-multi.txt"]
    bad = by_path["b-3k.bin"]
    assert bad.status == ItemStatus.INCOMPLETE
    assert "QmSNLTo6Wv9dfroVaw7MFYjLqf9ho7PKrgsjdzYDtv8h1W" in (bad.error or "")
    assert not bad.source.verified
    assert by_path["a-hello.txt"].status == by_path["c-multi.txt"].status == ItemStatus.VERIFIED
    assert report.exit_code() == EXIT_ERROR


async def test_outside_root_car_cannot_escape(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(GC / "path_gateway_tar" / "outside-root.car")
    report = await Scanner(Settings(), gateways=[gw.url]).scan("zdj7WZkwn1RpTRNdH66kv2ocWfxBXLbMUW943JDKZjmFo7TGg")
    refused = [i for i in report.items if i.status == ItemStatus.ERROR]
    assert refused and all("would leave" in (i.error or "") for i in refused)
    assert report.exit_code() == EXIT_ERROR


async def test_a_lying_gateway_is_named_and_the_scan_completes_from_an_honest_one(make_gateway: MakeGateway) -> None:
    liar = await make_gateway(DIR_WITH_FILES)
    honest = await make_gateway(DIR_WITH_FILES)
    liar.lie_about.update(k for k, v in liar.blocks.items() if v != b"hello world\n")  # lies about all but one
    report = await Scanner(Settings(), gateways=[liar.url, honest.url]).scan(DIR_CID)
    assert {i.path: i.signals.to_view()["sha256"] for i in report.items} == TRUE_SHA256
    assert all(i.status == ItemStatus.VERIFIED for i in report.items)
    gateways = {g["url"]: g for g in report.gateways}
    assert gateways[liar.url]["lied"] >= 1 and gateways[liar.url]["trusted"] is False
    assert gateways[honest.url]["trusted"] is True


async def test_only_a_lying_gateway_means_nothing_is_believed(make_gateway: MakeGateway) -> None:
    liar = await make_gateway(DIR_WITH_FILES)
    liar.lie_about.update(liar.blocks)
    report = await Scanner(Settings(), gateways=[liar.url]).scan(DIR_CID)
    (root,) = report.items
    assert root.status == ItemStatus.INCOMPLETE and not root.source.verified
    assert "served bytes that do not match the CID" in (root.error or "")
    assert root.source.lied == [liar.url]
    assert report.gateways[0]["trusted"] is False
    assert report.exit_code() == EXIT_ERROR


async def test_content_blocked_everywhere_is_reported_blocked_and_does_not_fail_the_scan(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    hello = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")
    gw.blocked[bytes(hello.digest)] = 410
    report = await Scanner(Settings(), gateways=[gw.url]).scan(DIR_CID)
    item = next(i for i in report.items if i.path == "hello.txt")
    assert item.status == ItemStatus.BLOCKED and item.source.blocked_at == {gw.url: 410}
    assert report.exit_code() == EXIT_CLEAN


async def test_garbage_protobuf_and_an_oversized_block_are_per_item_errors(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    garbage = b"\x12\x05\x0a\x03abc\xff\xff"
    garbage_cid = cid_of(garbage)
    huge = b"\x00" * (2 * 1024 * 1024 + 1)
    huge_cid = cid_of(huge, "raw")
    hello = parse_cid("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY")
    directory = pbnode(
        [(garbage_cid, "garbage.bin", 8), (huge_cid, "huge.bin", len(huge)), (hello, "hello.txt", 12)], unixfs(1)
    )
    root = cid_of(directory)
    gw.add_blocks([(garbage_cid, garbage), (huge_cid, huge), (root, directory)])
    report = await Scanner(Settings(), gateways=[gw.url]).scan(str(root))
    by_path = {i.path: i for i in report.items}
    assert by_path["garbage.bin"].status == ItemStatus.ERROR and "dag-pb" in (by_path["garbage.bin"].error or "")
    assert by_path["huge.bin"].status in (ItemStatus.ERROR, ItemStatus.INCOMPLETE)
    assert "2097152" in (by_path["huge.bin"].error or "")
    assert by_path["hello.txt"].status == ItemStatus.VERIFIED


async def test_a_bad_cid_is_a_clear_scan_error() -> None:
    report = await Scanner(Settings(), gateways=["http://127.0.0.1:9"]).scan("ipfs://bafy-not-a-cid")
    assert report.items == [] and "not a valid CID" in report.errors[0]
    assert report.exit_code() == EXIT_ERROR


async def test_item_over_the_size_limit_is_skipped_without_fetching_its_leaves(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(settings(max_item_bytes=1000), gateways=[gw.url]).scan(DIR_CID)
    item = next(i for i in report.items if i.path == "multiblock.txt")
    assert item.status == ItemStatus.SKIPPED and "1026 bytes" in (item.error or "")
    assert report.exit_code() == EXIT_ERROR


async def test_scan_byte_budget_skips_what_does_not_fit(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(settings(max_scan_bytes=100), gateways=[gw.url], concurrency=1).scan(DIR_CID)
    statuses = [i.status for i in report.items]
    assert ItemStatus.SKIPPED in statuses and ItemStatus.VERIFIED in statuses


async def test_path_target_scans_only_the_named_file(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(Settings(), gateways=[gw.url]).scan(f"/ipfs/{DIR_CID}/hello.txt")
    assert [i.path for i in report.items] == ["hello.txt"]
    assert report.resolved is not None and report.root == DIR_CID


async def test_path_gateway_url_target_uses_that_gateway_when_none_is_given(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    report = await Scanner(Settings()).scan(f"{gw.url}/ipfs/{DIR_CID}/multiblock.txt")
    assert [(i.path, i.signals.to_view()["sha256"]) for i in report.items] == [
        ("multiblock.txt", TRUE_SHA256["multiblock.txt"])
    ]


@pytest.mark.parametrize("mode", ["car", "raw"])
async def test_raw_and_car_retrieval_agree(make_gateway: MakeGateway, mode: str) -> None:
    gw = await make_gateway(HAMT)
    report = await Scanner(Settings(), gateways=[gw.url], mode=mode).scan(  # type: ignore[arg-type]
        "/ipfs/bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i/500.txt"
    )
    assert [i.signals.to_view()["sha256"] for i in report.items] == [TRUE_SHA256["multiblock.txt"]]
    assert gw.requests["car" if mode == "car" else "raw"] > 0
    assert gw.requests["raw" if mode == "car" else "car"] == 0


@pytest.mark.parametrize("car", sorted(IPFS_FIXTURES.rglob("*.car")), ids=lambda p: p.name)
async def test_every_fixture_car_scans_locally_without_a_crash(car: Path) -> None:
    report = await Scanner(Settings()).scan(str(car))
    assert report.root is not None
    assert not report.errors or "not in" in report.errors[0]  # partial CARs may lack their own root's children
    for item in report.items:
        assert item.status != ItemStatus.VERIFIED or item.signals.to_view().get("sha256") or item.kind == "symlink"


async def test_carv2_local_file_scans() -> None:
    report = await Scanner(Settings()).scan(str(IPFS_FIXTURES / "extras" / "kubo-dag-stat-carv2.car"))
    assert report.items and all(i.status == ItemStatus.VERIFIED for i in report.items)
    assert {i.media_type for i in report.items} == {"application/vnd.ipld.dag-cbor"}


async def test_truncated_local_car_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.car"
    broken.write_bytes(DIR_WITH_FILES.read_bytes()[:-40])
    report = await Scanner(Settings()).scan(str(broken))
    assert report.errors and "truncated CAR" in report.errors[0]
    assert report.exit_code() == EXIT_ERROR


async def test_local_directory_is_hashed_without_ipfs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hello.txt").write_bytes(b"hello world\n")
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "link").symlink_to("/etc/passwd")
    report = await Scanner(Settings()).scan(str(tmp_path))
    by_path = {i.path: i for i in report.items}
    assert by_path["sub/hello.txt"].signals.to_view()["sha256"] == TRUE_SHA256["hello.txt"]
    assert by_path["sub/hello.txt"].cid is None and by_path["sub/hello.txt"].source.local
    assert by_path["link"].kind == "symlink" and by_path["link"].signals.to_view() == {}
    assert by_path["empty.bin"].size == 0


async def test_a_fifo_inside_a_scanned_directory_is_reported_never_opened(tmp_path: Path) -> None:
    # Opening a FIFO with no writer blocks for ever: the scan would never end.
    import os

    (tmp_path / "a.txt").write_bytes(b"hello world\n")
    os.mkfifo(tmp_path / "pipe")
    report = await Scanner(Settings()).scan(str(tmp_path))
    by_path = {i.path: i for i in report.items}
    assert by_path["a.txt"].status == ItemStatus.VERIFIED
    assert by_path["pipe"].status == ItemStatus.ERROR
    assert "not a regular file (a FIFO)" in (by_path["pipe"].error or "")
    assert report.exit_code() == EXIT_ERROR
