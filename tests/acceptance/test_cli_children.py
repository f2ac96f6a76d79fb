"""The real `dweb-agent` leaves no process behind: `scan` and `hash` when they
finish, `scan` killed in the middle of hashing, `run` stopped with Ctrl-C (which
also prints no traceback from the media workers).

Each command runs in a session of its own; a process keeps its session id when
orphaned (its parent chain is lost then), so "no process left" means the
session is empty, polled up to a deadline after the command exited."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import dweb_agent_command
from tests.support.gateway import FixtureGateway
from tests.support.processes import Proc, in_session, wait_until_gone
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
PHOTOS = sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").glob("*.jpg"))


@contextlib.asynccontextmanager
async def _session(*args: str, env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`dweb-agent ARGS` as the leader of a new session, stderr to LOG (a file:
    an orphan holding a pipe open would stall the test instead of failing it).
    Whatever is left of the session at the end is killed, test passed or not."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *dweb_agent_command(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for left in in_session(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(left.pid, signal.SIGKILL)


def _described(procs: list[Proc]) -> list[str]:
    return [f"{p.pid} (parent {p.ppid}): {p.cmdline[:100]}" for p in procs]


async def _session_empties(sid: int) -> None:
    left = await wait_until_gone(lambda: in_session(sid), 60)
    assert left == [], _described(left)


def _env(tmp_path: Path, workers: int = 2) -> dict[str, str]:
    return {"DWEB_AGENT_AGENT_DATA_DIR": str(tmp_path / "data"), "DWEB_AGENT_MEDIA_WORKERS": str(workers)}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, folder / photo.name)
    return folder


async def test_scan_of_a_local_directory_leaves_no_process(tmp_path: Path, photos: Path) -> None:
    async with _session("scan", str(photos), "--format", "json", env=_env(tmp_path), log=tmp_path / "err") as proc:
        assert await asyncio.wait_for(proc.wait(), 300) == 0, (tmp_path / "err").read_text()[-2000:]
        await _session_empties(proc.pid)


async def test_hash_leaves_no_process(tmp_path: Path, photos: Path) -> None:
    files = [str(p) for p in sorted(photos.iterdir())[:3]]
    async with _session("hash", *files, env=_env(tmp_path), log=tmp_path / "err") as proc:
        assert await asyncio.wait_for(proc.wait(), 300) == 0, (tmp_path / "err").read_text()[-2000:]
        await _session_empties(proc.pid)


def _workers(sid: int) -> list[Proc]:
    """Media workers of a session: processes forked by its forkserver."""
    procs = in_session(sid)
    servers = {p.pid for p in procs if "multiprocessing.forkserver" in p.cmdline and p.ppid == sid}
    return [p for p in procs if p.ppid in servers]


async def test_scan_killed_while_hashing_leaves_no_process(tmp_path: Path, photos: Path) -> None:
    """SIGKILL gives the agent no chance to clean up: its workers and the
    forkserver must see it is gone and end by themselves."""
    async with _session(
        "scan", str(photos), "--format", "json", env=_env(tmp_path, workers=1), log=tmp_path / "err"
    ) as proc:

        def worker_seen() -> bool:
            assert proc.returncode is None, "the scan ended before a media worker was seen"
            return bool(_workers(proc.pid))

        await until(worker_seen, 120, why=lambda: "no media worker started")
        proc.kill()
        await proc.wait()
        await _session_empties(proc.pid)


async def test_ctrl_c_of_run_prints_no_worker_traceback_and_leaves_no_process(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """The daemon polls a directory of photos through a gateway that stalls
    after a few blocks, so that its workers, having hashed some photos, sit
    idle; then Ctrl-C reaches every process of the terminal's foreground group."""
    builder = UnixFSBuilder()
    entries = {}
    for photo in PHOTOS:
        entries[photo.name] = builder.add_file(photo.read_bytes())
    root, _ = builder.add_directory(entries)
    gateway = await make_gateway(hold_after=4)
    gateway.add_blocks(builder.blocks)
    data_dir = tmp_path / "data"
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[agent]
data_dir = "{data_dir}"
health_port = 0
shutdown_grace_s = 1
[api]
port = 0
[gateways]
urls = ["{gateway.url}"]
read_timeout_s = 120
[media]
workers = 2
[schedule]
jitter_fraction = 0
[[targets]]
url = "ipfs://{root}"
interval_s = 3600
""")
    database = f"sqlite+aiosqlite:///{data_dir / 'agent.sqlite3'}"
    log = tmp_path / "agent.log"
    async with _session("run", "--config", str(config), env={}, log=log) as proc:

        async def hashed_some() -> bool:
            assert proc.returncode is None, log.read_text()[-2000:]
            if not (data_dir / "agent.sqlite3").exists():
                return False
            async with await Store.open(database) as store:
                return await store.items.count() >= 2 and bool(_workers(proc.pid))

        await until(hashed_some, 120, why=lambda: "the agent hashed nothing")
        # The poll now waits on the stalled gateway.
        await until(
            lambda: gateway.requests["car"] + gateway.requests["raw"] > 4,
            120,
            why=lambda: "the poll did not reach the stalled gateway",
        )
        os.killpg(proc.pid, signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 120)
        err = log.read_text()
        assert "KeyboardInterrupt" not in err, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        await _session_empties(proc.pid)
