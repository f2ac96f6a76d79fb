"""`dweb-agent scan` as an investigator runs it: real process, real gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import IPFS_FIXTURES, MEDIA_FIXTURES
from tests.support.cli import Result as CliResult
from tests.support.cli import dweb_agent_command, run_cli
from tests.support.dagpb import cid_of, pbnode, unixfs
from tests.support.gateway import FixtureGateway
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until

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
        assert set(item) >= REQUIRED_ITEM_KEYS
        assert item["status"] == "verified" and item["source"] == {
            **item["source"],
            "gateway": gw.url,
            "verified": True,
        }
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
    result = await run_cli(
        "scan", "ipfs://bafy-this-is-not-a-cid", "--gateway", "http://127.0.0.1:9", "--format", "json"
    )
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


# -- exit codes: 130 for Ctrl-C, 141 for a reader that went away, 2 (never 1) for anything unforeseen --


def _sigint_as_at_a_terminal() -> None:
    # A test run started in the background (`.ci/run &`) inherits SIGINT ignored; a user's shell does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_ctrl_c_mid_scan_exits_130_and_leaves_the_previous_report_alone(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    builder = UnixFSBuilder()
    photos = sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir())[:4]
    root, _ = builder.add_directory({p.name: builder.add_file(p.read_bytes()) for p in photos})
    gw = await make_gateway(hold_after=2)  # the directory and one photo, then the gateway stalls
    gw.add_blocks(builder.blocks)
    out = tmp_path / "report.json"
    out.write_text("the previous report\n")
    # SIGINT to the scan process itself: how the media workers take a terminal's Ctrl-C (sent to
    # the whole group) is the pool's business (tests/unit/media), not this command's exit code.
    proc = await asyncio.create_subprocess_exec(
        *dweb_agent_command(),
        "scan",
        f"ipfs://{root}",
        "--gateway",
        gw.url,
        "--format",
        "json",
        "--out",
        str(out),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_sigint_as_at_a_terminal,
    )
    try:
        await until(lambda: gw.requests["car"] + gw.requests["raw"] > 2)  # a request is held: mid-scan
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        gw.release()
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "interrupted" in stderr
    # No half report claiming anything, and nothing left behind by the check of --out.
    assert out.read_text() == "the previous report\n" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def _many_files(directory: Path, count: int = 1500) -> Path:
    """Enough items that the report overflows a pipe's buffer (64 KiB) in both formats."""
    directory.mkdir()
    for i in range(count):
        (directory / f"file-{i:04}.txt").write_text(f"file {i}\n")
    return directory


def _read_one_line_then_close(*args: str) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [*dweb_agent_command(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        first = proc.stdout.readline().decode()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        return proc.wait(timeout=120), first, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_reader_that_goes_away_makes_the_scan_exit_141_even_with_findings(tmp_path: Path, fmt: str) -> None:
    files = _many_files(tmp_path / "files")
    listing = tmp_path / "list.txt"
    listing.write_text(f"md5 {hashlib.md5(b'file 7' + bytes([10])).hexdigest()}\n")  # one finding: exit 1 if read
    args = ("scan", str(files), "--no-media", "--list", str(listing), "--format", fmt)
    code, first, err = _read_one_line_then_close(*args)
    assert code == 141, err
    assert first.strip() and "Traceback" not in err and "Exception ignored" not in err, err
    # Read to the end, the same scan says "findings".
    done = subprocess.run([*dweb_agent_command(), *args], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and len(done.stdout) > 256 * 1024, done.stderr


def _crash_on_import(tmp_path: Path, patch: str) -> dict[str, str]:
    """Environment for a real `dweb-agent` whose code raises where `patch` says (sitecustomize)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(patch)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


async def _scan_where_exit_code_raises(tmp_path: Path, raise_: str) -> CliResult:
    """A real `dweb-agent scan` of a local file whose ScanReport.exit_code runs `raise_`."""
    env = _crash_on_import(
        tmp_path,
        f"import agent.model.report\ndef boom(self):\n    {raise_}\nagent.model.report.ScanReport.exit_code = boom\n",
    )
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("a\n")
    return await run_cli("scan", str(files), "--no-media", env=env)


async def test_an_unexpected_exception_is_one_line_and_exit_2_never_1(tmp_path: Path) -> None:
    result = await _scan_where_exit_code_raises(tmp_path, "raise RuntimeError('nobody foresaw this\\nsecond line')")
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: unexpected RuntimeError: nobody foresaw this second line"), result.stderr
    assert "Traceback" not in result.stderr


async def test_a_broken_pipe_that_is_not_stdout_is_an_error_not_141(tmp_path: Path) -> None:
    result = await _scan_where_exit_code_raises(tmp_path, "raise BrokenPipeError(32, 'a worker went away')")
    assert result.code == 2, result.stderr
    assert "unexpected BrokenPipeError" in result.stderr and "Traceback" not in result.stderr


async def test_every_command_has_the_top_level_handler(tmp_path: Path) -> None:
    env = _crash_on_import(
        tmp_path,
        (
            "import agent.pipeline.local\n"
            "async def boom(*args, **kwargs):\n"
            "    raise ValueError('hashing broke')\n"
            "agent.pipeline.local.hash_local_files = boom\n"
        ),
    )
    photo = tmp_path / "a.txt"
    photo.write_text("a\n")
    result = await run_cli("hash", str(photo), env=env)
    assert result.code == 2 and "error: unexpected ValueError: hashing broke" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- bad arguments are found before anything is fetched --


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("/nonexistent/dir/r.json", "the directory /nonexistent/dir does not exist"),
        ("/proc/r.json", "cannot create a file in /proc"),  # unwritable even for root
        ("{tmp}/a-file/r.json", "is not a directory"),
    ],
)
async def test_an_unusable_out_path_is_refused_before_anything_is_fetched(
    make_gateway: MakeGateway, tmp_path: Path, out: str, reason: str
) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    (tmp_path / "a-file").write_text("")
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url, "--format", "json", "--out", out.format(tmp=tmp_path))
    assert result.code == 2 and reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert sum(gw.requests.values()) == 0


async def test_missing_car_file_says_so_and_prints_no_empty_table() -> None:
    result = await run_cli("scan", "./nope.car", "--format", "table")
    assert result.code == 2
    assert "'./nope.car': no such file or directory" in result.stderr
    assert "multibase" not in result.stderr and result.stdout == ""


async def test_invalid_cid_is_explained_in_words_on_stderr_even_with_json() -> None:
    result = await run_cli("scan", "bafyNOTACID", "--gateway", "http://127.0.0.1:9", "--format", "json")
    assert result.code == 2
    assert "is not a valid CID" in result.stderr and "do not end on a whole byte" in result.stderr
    assert "Pad bits" not in result.stderr + result.stdout
    assert "is not a valid CID" in json.loads(result.stdout)["errors"][0]


async def test_scan_errors_reach_stderr_with_json(tmp_path: Path) -> None:
    broken = tmp_path / "cut.car"
    broken.write_bytes(DIR_WITH_FILES.read_bytes()[:200])
    result = await run_cli("scan", str(broken), "--format", "json")
    assert result.code == 2 and "truncated CAR" in result.stderr


@pytest.mark.parametrize(
    "url", ["not-a-url", "ftp://127.0.0.1", "http://127.0.0.1:99999", "127.0.0.1:8080", "http://127.0.0.1:8080/ipfs/"]
)
async def test_a_bad_gateway_url_is_refused_before_scanning(url: str) -> None:
    result = await run_cli("scan", DIR_CID, "--gateway", url, "--format", "json")
    assert result.code == 2 and "Invalid value for '--gateway'" in result.stderr, result.stderr
    assert result.stdout == ""


async def test_a_missing_list_names_its_path_and_why(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url, "--list", "./no-such-list.txt")
    assert result.code == 2
    assert "error: list ./no-such-list.txt: no such file or directory" in result.stderr, result.stderr
    assert sum(gw.requests.values()) == 0
    result = await run_cli("scan", DIR_CID, "--gateway", gw.url, "--list", "http://127.0.0.1:9/l.txt")
    assert result.code == 2 and "error: list http://127.0.0.1:9/l.txt: " in result.stderr
    assert "connect" in result.stderr.lower() and sum(gw.requests.values()) == 0


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://[::1/ipfs/bafkqaaa", "is not matched"),
        ("https://bafkqaaa.ipfs.example:99999/", "port 99999 is out of range"),
        ("~nosuchuser/x.car", "no user 'nosuchuser'"),
        ("a" * 300, "is not a valid CID"),
        ("./" + "a" * 300 + ".car", "too long to be a file name"),
        ("ipfs://bafkqaaa/%2e%2e/etc", "not allowed"),
        ("/dev/zero", "not a regular file or directory"),  # was read for ever
    ],
)
async def test_hostile_targets_are_one_clear_line_and_exit_2(target: str, reason: str) -> None:
    result = await run_cli("scan", target, "--format", "table")
    assert result.code == 2, result.stderr
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


async def test_names_from_the_content_are_shown_as_they_are_not_as_markup(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "[bold]plain.txt").write_text("x\n")
    (files / "[red]x[").write_text("y\n")
    result = await run_cli("scan", str(files), "--no-media", "--format", "table")
    assert result.code == 0, result.stderr
    assert "[bold]plain.txt" in result.stdout and "[red]x[" in result.stdout
