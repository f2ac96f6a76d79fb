"""`dweb-agent scan` as an investigator runs it: real process, real gateway on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.conftest import IPFS_FIXTURES
from tests.support.cli import run_cli
from tests.support.dagpb import cid_of, pbnode, unixfs
from tests.support.gateway import FixtureGateway

GC = IPFS_FIXTURES / "gateway-conformance"
DIR_WITH_FILES = GC / "path_gateway_unixfs" / "dir-with-files.car"
DIR_CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
MakeGateway = Callable[..., Awaitable[FixtureGateway]]
REQUIRED_ITEM_KEYS = {"path", "cid", "size", "media_type", "status", "error", "source", "signals", "findings"}


async def test_scan_prints_the_documented_json_report_and_exits_0(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    result = await run_cli("scan", f"ipfs://{DIR_CID}", "--gateway", gw.url, "--format", "json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"target", "root", "started_at", "finished_at", "items", "summary"} <= set(report)
    assert report["root"] == DIR_CID and report["target"] == f"ipfs://{DIR_CID}"
    assert report["summary"]["items"] == 4 and report["summary"]["verified"] == 4
    assert report["summary"]["incomplete"] == 0 and report["summary"]["findings"] == 0
    for item in report["items"]:
        assert REQUIRED_ITEM_KEYS <= set(item)
        assert item["status"] == "verified" and item["source"] == {**item["source"], "gateway": gw.url, "verified": True}
        assert set(item["signals"]) >= {"md5", "sha256"}
    hello = next(i for i in report["items"] if i["path"] == "hello.txt")
    assert hello["signals"]["md5"] == "6f5902ac237024bdd0c176cb93063dc4"
    assert hello["media_type"] == "text/plain" and hello["size"] == 12


async def test_json_is_the_default_when_stdout_is_not_a_terminal(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url)
    assert json.loads(result.stdout)["summary"]["items"] == 4


async def test_an_incomplete_item_makes_the_scan_exit_2(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES, GC / "trustless_gateway_car" / "file-3k-and-3-blocks-missing-block.car")
    hello = next(c for k, c in gw.cids.items() if gw.blocks[k] == b"hello world\n")
    incomplete = next(c for c in gw.cids.values() if str(c) == "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk")
    directory = pbnode([(hello, "hello.txt", 12), (incomplete, "three-k.bin", 3072)], unixfs(1))
    root = cid_of(directory)
    gw.add_blocks([(root, directory)])
    result = await run_cli("scan", f"ipfs://{root}", "--gateway", gw.url, "--format", "json")
    assert result.code == 2
    report = json.loads(result.stdout)
    assert {i["path"]: i["status"] for i in report["items"]} == {"hello.txt": "verified", "three-k.bin": "incomplete"}
    assert report["summary"]["incomplete"] == 1


async def test_report_can_be_written_to_a_file(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    out = tmp_path / "report.json"
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url, "--format", "json", "--out", str(out))
    assert result.code == 0 and result.stdout == ""
    assert json.loads(out.read_text())["summary"]["verified"] == 4


async def test_table_format_lists_every_item_and_the_summary(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url, "--format", "table")
    assert result.code == 0
    for name in ("hello.txt", "multiblock.txt", "ascii.txt", "ascii-copy.txt"):
        assert name in result.stdout
    assert "4 items: 4 verified" in result.stdout


async def test_malformed_cid_is_a_clear_error_with_exit_2_and_no_traceback() -> None:
    result = await run_cli("scan", "ipfs://bafy-this-is-not-a-cid", "--gateway", "http://127.0.0.1:9", "--format", "json")
    assert result.code == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "not a valid CID" in json.loads(result.stdout)["errors"][0]


async def test_truncated_car_file_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "cut.car"
    broken.write_bytes(DIR_WITH_FILES.read_bytes()[:200])
    result = await run_cli("scan", str(broken), "--format", "json")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "truncated CAR" in json.loads(result.stdout)["errors"][0]


async def test_local_carv2_file_scans_without_any_gateway() -> None:
    result = await run_cli("scan", str(IPFS_FIXTURES / "extras" / "kubo-dag-stat-carv2.car"), "--format", "json")
    assert result.code == 0, result.stdout
    summary = json.loads(result.stdout)["summary"]
    # 4 dag-cbor blocks; one is linked from two places, so it is reported under both paths.
    assert summary["items"] == summary["verified"] == 5


async def test_bad_option_exits_2() -> None:
    result = await run_cli("scan", DIR_CID, "--format", "xml")
    assert result.code == 2 and "Invalid value" in result.stderr
