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
    by_type: dict[str, list[str]] = {}
    for line in lines:
        kind, value = line.split(" ")
        by_type.setdefault(kind, []).append(value)
    assert by_type["pdq"] == [expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]]
    manifest = {
        row.split("\t")[0]: row.split("\t") for row in (MEDIA_FIXTURES / "MANIFEST.tsv").read_text().splitlines()
    }
    pdf_row = next(v for k, v in manifest.items() if k.endswith("test_pdf_half.pdf"))
    assert pdf_row[2] in by_type["md5"] and pdf_row[3] in by_type["sha256"]
    # Only what lists match by default (issue 8): not the imagehash family.
    assert set(by_type) == {"md5", "sha256", "pdq"}


async def test_hash_signals_option_chooses_the_types_and_rejects_unknown_ones() -> None:
    result = await run_cli("hash", "--signals", "pdq,phash,sha1", str(ORIGINAL))
    assert result.code == 0, result.stderr
    kinds = [line.split(" ")[0] for line in result.stdout.splitlines() if not line.startswith("#")]
    assert kinds == ["pdq", "phash", "sha1"]
    assert "# phash: not matched unless the list sets [lists.thresholds.<list>] phash_distance" in result.stdout
    bad = await run_cli("hash", "--signals", "pdq,sha512", str(ORIGINAL))
    assert bad.code == 2 and "sha512" in bad.stderr and "valid: md5, sha1, sha256, pdq" in bad.stderr
    assert "Traceback" not in bad.stderr
    everything = json.loads((await run_cli("hash", "--format", "json", str(ORIGINAL))).stdout)
    assert {s["type"] for s in everything[0]["signals"]} >= {"phash", "dhash", "ahash", "whash", "colorhash"}


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
    header, *ours = frames.stdout.splitlines()
    assert header == "# video: doorknob-hd-no-bar.mp4"
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
        with subprocess.Popen(
            [*dweb_agent_command(), "hash", *[str(note)] * 400], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
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


def _scenes(tmp_path: Path) -> dict[str, bytes]:
    """Unrelated images: flat, greyscale, gradients and shapes, as a DAG would hold."""
    import io

    from PIL import Image, ImageDraw

    out: dict[str, bytes] = {}
    for n in range(24):
        grey = n % 2 == 0
        colour = (n * 10 % 256,) * 3 if grey else (n * 37 % 256, n * 91 % 256, n * 53 % 256)
        image = Image.new("RGB", (120 + n * 7, 90 + n * 5), colour)
        draw = ImageDraw.Draw(image)
        if n % 3:
            for k in range(n % 5 + 1):
                ink = ((n * 29 + k * 71) % 256,) * 3 if grey else ((n * 13 + k * 50) % 256, k * 40 % 256, 200)
                draw.ellipse((k * 15, k * 9, k * 15 + 40 + n, k * 9 + 30 + n), fill=ink)
        buf = io.BytesIO()
        image.save(buf, "PNG" if n % 4 else "JPEG")
        out[f"scene-{n:02d}.{'png' if n % 4 else 'jpg'}"] = buf.getvalue()
    for path in sorted((MEDIA_FIXTURES / "pdq" / "low-quality").iterdir()):
        out[f"low/{path.name}"] = path.read_bytes()
    return out


async def test_a_list_built_as_the_readme_shows_flags_no_unrelated_image(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """Issue 8: two photos, a greyscale copy and a brightened edit hashed into a
    list flagged 38% of a DAG of unrelated images (colorhash, aHash, wHash)."""
    from PIL import Image, ImageEnhance

    photo = MEDIA_FIXTURES / "pdq" / "letterboxed_sample-b.jpg"
    grey, bright = tmp_path / "grey.png", tmp_path / "bright.jpg"
    Image.open(photo).convert("L").save(grey)
    ImageEnhance.Brightness(Image.open(ORIGINAL)).enhance(1.4).save(bright)
    hashed = await run_cli("hash", str(ORIGINAL), str(photo), str(grey), str(bright))
    assert hashed.code == 0, hashed.stderr
    listing = tmp_path / "mylist.txt"
    listing.write_text(hashed.stdout)

    gw = await make_gateway()
    root = serve_files(gw, _scenes(tmp_path))
    result = await run_cli("scan", f"ipfs://{root}", "--gateway", gw.url, "--list", str(listing), "--format", "json")
    report = json.loads(result.stdout)
    assert len(report["items"]) >= 30
    assert [(i["path"], f["signal_type"]) for i in report["items"] for f in i["findings"]] == []
    assert result.code == 0, result.stderr


async def test_hash_of_two_videos_is_a_list_of_two_entries(tmp_path: Path) -> None:
    """Issue 8: `hash --format vpdq a.mp4 b.mp4 > list` made one entry of both,
    which a third, unrelated video then matched at 100%."""
    videos = MEDIA_FIXTURES / "video"
    hashed = await run_cli(
        "hash", "--format", "vpdq", str(videos / "chair-19-sd-bar.mp4"), str(videos / "pattern-hd-no-bar.mp4")
    )
    assert hashed.code == 0, hashed.stderr
    listing = tmp_path / "videos.txt"
    listing.write_text(hashed.stdout)
    folder = tmp_path / "suspect"
    folder.mkdir()
    for name in ("doorknob-hd-no-bar.mp4", "chair-19-sd-bar.mp4", "pattern-hd-no-bar.mp4"):
        shutil.copy(videos / name, folder / name)
    result = await run_cli("scan", str(folder), "--list", str(listing), "--format", "json")
    items = {i["path"]: i for i in json.loads(result.stdout)["items"]}
    assert items["doorknob-hd-no-bar.mp4"]["findings"] == []
    header_line = {
        line.removeprefix("# video: "): n
        for n, line in enumerate(hashed.stdout.splitlines(), 1)
        if line.startswith("# video: ")
    }
    for name in ("chair-19-sd-bar.mp4", "pattern-hd-no-bar.mp4"):
        (finding,) = [f for f in items[name]["findings"] if f["signal_type"] == "vpdq"]
        assert finding["distance"] >= 80, name
        assert finding["list_line"] == header_line[name], finding
    assert result.code == 1, result.stderr
