"""`dweb-agent scan` of crafted DAG bombs, as the real command: it ends, bounded by
the DAG's distinct nodes, with a report that says what repeated. (The subprocess
timeout is a guard for old code, which walked every one of 2**40 paths.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.dagpb import Blocks, block, file_node, pbnode, shared_directory_bomb, unixfs, write_car


async def test_scanning_a_car_of_directories_sharing_one_child_ends_with_each_repeat_reported(tmp_path: Path) -> None:
    root, blocks = shared_directory_bomb(40)
    car = write_car(tmp_path / "bomb.car", root, blocks)
    result = await run_cli("scan", str(car), "--format", "json", "--no-media")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == []
    assert len(report["items"]) == 40
    assert {(i["kind"], i["status"]) for i in report["items"]} == {("directory", "verified")}
    assert report["items"][-1]["path"] == "b" and report["items"][-1]["duplicate_of"] == "a"


async def test_a_file_lying_about_its_size_exits_2_with_the_reason(tmp_path: Path) -> None:
    blocks: Blocks = []
    leaf = block(blocks, b"x", "raw")
    n1 = block(blocks, file_node([(leaf, 1)] * 1000))
    n2 = block(blocks, file_node([(n1, 1000)] * 1000))
    liar = block(blocks, file_node([(n2, 1_000_000)] * 900, filesize=10))
    root = block(blocks, pbnode([(liar, "small.txt", 10)], unixfs(1)))
    result = await run_cli(
        "scan", str(write_car(tmp_path / "liar.car", root, blocks)), "--format", "json", "--no-media"
    )
    assert result.code == 2, result.stderr
    (item,) = json.loads(result.stdout)["items"]
    assert item["status"] == "error"
    assert "declares a filesize of 10 bytes but its data and blocksizes add up to 900000000" in item["error"]
