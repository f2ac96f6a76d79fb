"""`dweb-agent hash` builds lists that `dweb-agent scan --list` then matches, as a user would chain them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import run_cli
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq, hamming, media_files, serve_files

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
ORIGINAL = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg"


async def test_hash_prints_threatexchange_lines_with_the_reference_pdq() -> None:
    result = await run_cli("hash", str(ORIGINAL), str(MEDIA_FIXTURES / "docs" / "test_pdf_half.pdf"))
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    by_type = {}
    for line in lines:
        kind, value = line.split(" ")
        by_type.setdefault(kind, []).append(value)
    assert by_type["pdq"] == [expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]]
    manifest = {row.split("\t")[0]: row.split("\t") for row in (MEDIA_FIXTURES / "MANIFEST.tsv").read_text().splitlines()}
    pdf_row = next(v for k, v in manifest.items() if k.endswith("test_pdf_half.pdf"))
    assert pdf_row[2] in by_type["md5"] and pdf_row[3] in by_type["sha256"]
    assert set(by_type) >= {"md5", "sha1", "sha256", "pdq", "phash", "dhash", "ahash", "whash", "colorhash"}


async def test_hash_of_a_corrupt_image_is_an_error_with_exit_2_and_digests_still_printed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(ORIGINAL.read_bytes()[:3000])
    result = await run_cli("hash", str(broken))
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "broken.jpg" in result.stderr and "image/jpeg" in result.stderr
    assert result.stdout.count("md5 ") == 1


async def test_hash_json_and_vpdq_formats(tmp_path: Path) -> None:
    video = MEDIA_FIXTURES / "video" / "doorknob-hd-no-bar.mp4"
    result = await run_cli("hash", "--format", "json", str(video))
    (entry,) = json.loads(result.stdout)
    assert entry["media_type"] == "video/mp4" and len(entry["vpdq"]) > 1
    frames = await run_cli("hash", "--format", "vpdq", "--every-frame", str(video))
    reference = (MEDIA_FIXTURES / "vpdq-hashes" / "doorknob-hd-no-bar.txt").read_text().splitlines()
    ours = frames.stdout.splitlines()
    assert len(ours) == len(reference)
    assert [line.split(",")[0] for line in ours] == [line.split(",")[0] for line in reference]


async def test_hash_output_is_a_list_that_scan_matches(make_gateway: MakeGateway, tmp_path: Path) -> None:
    listing = tmp_path / "mine.txt"
    hashed = await run_cli("hash", str(ORIGINAL))
    listing.write_text(hashed.stdout)
    gw = await make_gateway()
    root = serve_files(gw, media_files("pdq/bridge-mods"))
    result = await run_cli("scan", f"ipfs://{root}", "--gateway", gw.url, "--list", str(listing), "--format", "json")
    assert result.code == 1, result.stderr
    report = json.loads(result.stdout)
    original = expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]
    for item in report["items"]:
        pdq = [f for f in item["findings"] if f["signal_type"] == "pdq"]
        assert pdq and pdq[0]["distance"] == hamming(item["signals"]["pdq"], original), item["path"]
    exact = next(i for i in report["items"] if i["path"].endswith("aaa-orig.jpg"))
    assert {f["signal_type"] for f in exact["findings"]} >= {"md5", "sha256", "pdq"}
    assert report["summary"]["findings"] >= 12 and report["lists"][0]["name"] == "mine"


async def test_scan_of_a_local_directory_with_a_list(tmp_path: Path) -> None:
    folder = tmp_path / "suspect"
    folder.mkdir()
    shutil.copy(ORIGINAL, folder / "renamed.bin")
    (folder / "note.txt").write_text("nothing here\n")
    listing = tmp_path / "pdq.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
    result = await run_cli("scan", str(folder), "--list", str(listing), "--format", "json")
    assert result.code == 1
    items = {i["path"]: i for i in json.loads(result.stdout)["items"]}
    assert items["renamed.bin"]["media_type"] == "image/jpeg" and items["renamed.bin"]["findings"][0]["distance"] == 0
    assert items["note.txt"]["findings"] == []


async def test_malformed_list_lines_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    listing = tmp_path / "mixed.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\npdq not-hex\nmd5 123\n")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(ORIGINAL, folder / "a.jpg")
    result = await run_cli("scan", str(folder), "--list", str(listing), "--format", "json")
    assert result.code == 1
    assert "mixed.txt:2" in result.stderr and "mixed.txt:3" in result.stderr


async def test_a_missing_list_file_is_a_clear_error() -> None:
    result = await run_cli("scan", str(ORIGINAL), "--list", "/no/such/list.txt")
    assert result.code == 2 and "/no/such/list.txt" in result.stderr and "Traceback" not in result.stderr


async def test_a_reader_that_stops_early_gets_exit_141_not_the_findings_code(tmp_path: Path) -> None:
    import asyncio
    import subprocess

    from tests.support.cli import dweb_agent_command

    note = tmp_path / "note.txt"
    note.write_text("nothing to see\n")

    def read_a_little_then_leave() -> tuple[int, bytes]:
        # ~400 x 4 lines: far more than a pipe holds, written line by line.
        with subprocess.Popen([*dweb_agent_command(), "hash", *[str(note)] * 400],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.read(10)
            proc.stdout.close()  # the reader goes away, as `| head` does
            err = proc.stderr.read()
            return proc.wait(timeout=60), err

    code, err = await asyncio.to_thread(read_a_little_then_leave)
    assert code == 141
    assert b"Traceback" not in err


async def test_hash_says_when_a_pdq_is_too_flat_to_match() -> None:
    flat = await run_cli("hash", str(MEDIA_FIXTURES / "pdq" / "low-quality" / "q0003.jpg"))
    assert "# pdq quality 3 (under 50" in flat.stdout
    good = await run_cli("hash", str(ORIGINAL))
    assert "# pdq quality 100\n" in good.stdout
