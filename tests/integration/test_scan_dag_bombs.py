"""Scans of DAGs crafted to explode a walk, from a local CAR and through a loopback
trustless gateway that counts requests. Old unbounded code is held by small limits
(max_items, max_item_bytes), so these tests fail on it instead of hanging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import dag_cbor
import pytest
from multiformats import CID

from agent.config import LimitSettings, Settings
from agent.ipfs.gateway import RetrievalMode
from agent.model.report import EXIT_ERROR, ItemStatus, ScanReport
from agent.pipeline import Scanner
from tests.support.dagpb import Blocks, block, file_node, hamt_bomb, pbnode, shared_directory_bomb, unixfs, write_car
from tests.support.gateway import FixtureGateway

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
LEVELS = 40  # 2**40 paths through 40 directories


def settings(**limits: int) -> Settings:
    # max_items guards the old code, which yields every path: it would stop there with an error.
    return Settings(limits=LimitSettings(**{"max_items": 1000, **limits}))


def bomb() -> tuple[CID, Blocks]:
    blocks: Blocks = []
    leaf = block(blocks, b"the one file\n", "raw")
    root, dirs = shared_directory_bomb(LEVELS, (leaf, 13))
    return root, blocks + dirs


def assert_bomb_report(report: ScanReport) -> None:
    items = report.items
    assert report.errors == []
    repeats = [i for i in items if i.kind == "directory"]
    files = [i for i in items if i.kind == "file"]
    assert len(repeats) == LEVELS - 1 and len(files) == 2
    assert all(i.status == ItemStatus.VERIFIED and i.duplicate_of for i in repeats)
    assert repeats[-1].path == "b" and repeats[-1].duplicate_of == "a"
    assert (
        files[1].duplicate_of == files[0].path
        and files[0].signals.to_view()["sha256"] == files[1].signals.to_view()["sha256"]
    )


async def test_a_car_of_directories_sharing_one_child_scans_each_directory_once(tmp_path: Path) -> None:
    root, blocks = bomb()
    car = write_car(tmp_path / "bomb.car", root, blocks)
    assert car.stat().st_size < 10_000
    report = await Scanner(settings(), hash_media=False).scan(str(car))
    assert_bomb_report(report)


async def test_through_a_gateway_each_shared_directory_is_one_request(make_gateway: MakeGateway) -> None:
    root, blocks = bomb()
    gw = await make_gateway()
    gw.add_blocks(blocks)
    report = await Scanner(settings(), gateways=[gw.url], hash_media=False).scan(f"ipfs://{root}")
    assert_bomb_report(report)
    assert sum(gw.requests.values()) == LEVELS + 1, gw.requests


async def test_the_node_budget_ends_a_scan_with_a_clear_error(tmp_path: Path) -> None:
    blocks: Blocks = []
    files = [(f"f{i:03}", block(blocks, f"file {i}\n".encode(), "raw")) for i in range(200)]
    root = block(blocks, pbnode([(c, n, 7) for n, c in files], unixfs(1)))
    report = await Scanner(settings(max_dag_nodes=50), hash_media=False).scan(
        str(write_car(tmp_path / "wide.car", root, blocks))
    )
    assert report.errors == ["more than 50 DAG nodes visited (limits.max_dag_nodes); stopped walking"]
    assert len(report.items) == 49 and report.exit_code() == EXIT_ERROR


async def test_a_hamt_repeating_one_sub_shard_costs_one_request_per_distinct_shard(make_gateway: MakeGateway) -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    # 256 paths to the bottom shard's 8 entries: the old walk asked for that shard 256
    # times and collected 2048 entries (deeper bombs are in the unit tests, under a guard).
    root, shards = hamt_bomb(1, [(f"e{i}.txt", leaf) for i in range(8)])
    gw = await make_gateway()
    gw.add_blocks(blocks + shards)
    report = await Scanner(settings(), gateways=[gw.url], mode="raw", hash_media=False).scan(f"ipfs://{root}")
    assert report.errors == []
    assert sorted(i.path for i in report.items) == [f"e{i}.txt" for i in range(8)]
    assert gw.requests["raw"] == 2 + 1, "two distinct shards, one leaf"


async def test_a_file_that_lies_about_its_size_is_an_error_not_read(tmp_path: Path) -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    n1 = block(blocks, file_node([(leaf, 1)] * 1000))
    n2 = block(blocks, file_node([(n1, 1000)] * 1000))
    liar = block(blocks, file_node([(n2, 1_000_000)] * 900, filesize=10))  # 10 bytes, says it; 9x10^8 really
    root = block(blocks, pbnode([(liar, "small.txt", 10)], unixfs(1)))
    report = await Scanner(settings(max_item_bytes=1000), hash_media=False).scan(
        str(write_car(tmp_path / "liar.car", root, blocks))
    )
    (item,) = report.items
    assert item.status == ItemStatus.ERROR
    assert item.error == (
        f"file block {liar} declares a filesize of 10 bytes but its data and blocksizes add up to 900000000"
    )


async def test_document_keys_leaving_the_root_are_item_errors(tmp_path: Path) -> None:
    blocks: Blocks = []
    secret = block(blocks, b"secret\n", "raw")
    doc = block(blocks, dag_cbor.encode({"../../../etc/passwd": secret}), "dag-cbor")
    report = await Scanner(settings(), hash_media=False).scan(str(write_car(tmp_path / "doc.car", doc, blocks)))
    by_path = {i.path: i for i in report.items}
    assert by_path["../../../etc/passwd"].status == ItemStatus.ERROR
    assert "would leave the root" in (by_path["../../../etc/passwd"].error or "")


@pytest.mark.parametrize(("mode", "requests"), [("car", {"car": 1}), ("raw", {"raw": 2})])
async def test_an_empty_leaf_repeated_2000_times_makes_no_request(
    make_gateway: MakeGateway, mode: RetrievalMode, requests: dict[str, int]
) -> None:
    blocks: Blocks = []
    empty = block(blocks, b"", "raw")
    hello = block(blocks, b"hello", "raw")
    root = block(blocks, file_node([(hello, 5)] + [(empty, 0)] * 2000))
    gw = await make_gateway()
    gw.add_blocks(blocks)
    report = await Scanner(settings(), gateways=[gw.url], mode=mode, hash_media=False).scan(f"ipfs://{root}")
    (item,) = report.items
    assert item.status == ItemStatus.VERIFIED and item.size == 5
    assert {k: v for k, v in gw.requests.items() if v} == requests


async def test_a_leaf_repeated_1000_times_is_one_raw_request(make_gateway: MakeGateway) -> None:
    blocks: Blocks = []
    hello = block(blocks, b"hello", "raw")
    root = block(blocks, file_node([(hello, 5)] * 1000))
    gw = await make_gateway()
    gw.add_blocks(blocks)
    report = await Scanner(settings(), gateways=[gw.url], mode="raw", hash_media=False).scan(f"ipfs://{root}")
    (item,) = report.items
    assert item.status == ItemStatus.VERIFIED and item.size == 5000
    assert gw.requests["raw"] == 2
