"""No process of a media pool outlives it: not on close, not when its caller
gave up on a hung item, not when the pool is dropped unclosed, not when the
process that owns it is killed. Workers ignore SIGINT (their parent stops them).

Processes are read from /proc; the pool's are multiprocessing's forkserver and
the workers it forks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from agent.media.errors import DecodeTimeout
from agent.media.limits import MediaLimits
from agent.media.pool import MediaHasher
from tests.support.processes import Proc, descendants, in_session, processes, wait_until_gone
from tests.support.wait import until

_CHECKOUT = Path(__file__).resolve().parents[3]  # the owner subprocess imports the agent from here

FORKSERVER = "multiprocessing.forkserver"


def announce_then_hang(path: str) -> None:
    """A job that says it runs (the file appears), then never returns."""
    Path(path).touch()
    time.sleep(3600)


def _pool_processes() -> list[Proc]:
    """This test process's forkserver and the workers forked from it (a fork
    keeps the forkserver's command line: workers are told apart by parent)."""
    mine = descendants(os.getpid())
    servers = {p.pid for p in mine if FORKSERVER in p.cmdline and p.ppid == os.getpid()}
    return [p for p in mine if p.pid in servers or p.ppid in servers]


def _workers() -> set[int]:
    servers = {p.pid for p in _pool_processes() if p.ppid == os.getpid()}
    return {p.pid for p in _pool_processes() if p.ppid in servers}


def _alive(pids: set[int]) -> list[Proc]:
    return [p for p in processes() if p.pid in pids]


async def test_close_ends_every_worker_and_the_forkserver() -> None:
    async with MediaHasher(workers=2) as hasher:
        workers = set(await asyncio.gather(hasher.run(os.getpid), hasher.run(os.getpid)))
        started = {p.pid for p in _pool_processes()}
        assert workers <= _workers() and len(started) > len(workers)  # the forkserver is one of them
    # close() returns once they are gone: nothing to wait for here.
    assert _alive(started) == []
    assert _pool_processes() == []


async def test_close_also_ends_the_workers_a_rebuild_killed() -> None:
    async with MediaHasher(MediaLimits(timeout_s=1.0), workers=1) as hasher:
        with pytest.raises(DecodeTimeout):
            await hasher.run(time.sleep, 3600)
        await hasher.run(os.getpid)
        seen = {p.pid for p in _pool_processes()}
    assert _alive(seen) == []
    assert _pool_processes() == []


async def test_close_kills_a_hung_worker_whose_caller_gave_up(tmp_path: Path) -> None:
    flag = tmp_path / "running"

    async def scenario() -> set[int]:
        async with MediaHasher(workers=1) as hasher:  # the item timeout (120 s) never fires here
            job = asyncio.create_task(hasher.run(announce_then_hang, str(flag)))
            await until(flag.exists, 60)  # the worker announces it started
            pids = {p.pid for p in _pool_processes()}
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        return pids

    pids = await asyncio.wait_for(scenario(), 60)  # before: close() waited for the hung item for ever
    assert _alive(pids) == []


async def test_a_pool_dropped_without_closing_has_its_workers_killed(tmp_path: Path) -> None:
    flag = tmp_path / "running"
    hasher = MediaHasher(workers=1)
    await hasher.__aenter__()
    job = asyncio.create_task(hasher.run(announce_then_hang, str(flag)))
    await until(flag.exists, 60)  # the worker announces it started
    workers = _workers()
    assert workers
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await job
    del hasher, job
    gc.collect()
    assert await wait_until_gone(lambda: _alive(workers), 30) == []


async def test_a_worker_ignores_sigint_and_keeps_serving() -> None:
    async with MediaHasher(workers=1) as hasher:
        worker = await hasher.run(os.getpid)
        os.kill(worker, signal.SIGINT)  # what Ctrl-C sends to the whole foreground process group
        assert await hasher.run(os.getpid) == worker
        assert hasher.rebuilds == 0


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


def _write_sigint_disposition(path: str) -> None:
    Path(path).write_text("ignored" if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else "raises")


async def test_the_forkserver_hands_an_ignored_sigint_to_every_child_from_birth(tmp_path: Path) -> None:
    # A Ctrl-C that reaches a child while its interpreter is still starting (before
    # any initializer runs) must not kill it with a traceback: the forkserver is
    # started with SIGINT ignored and hands that to every process it forks. A plain
    # process forked by the same forkserver (no worker initializer) shows what a
    # worker has before its initializer runs.
    import multiprocessing

    async with MediaHasher(workers=1) as hasher:
        await hasher.run(os.getpid)
        pool = _pool_processes()
        assert pool and all(_ignores_sigint(p.pid) for p in pool), pool
        out = tmp_path / "disposition"
        child = multiprocessing.get_context("forkserver").Process(target=_write_sigint_disposition, args=(str(out),))
        child.start()
        await asyncio.get_running_loop().run_in_executor(None, child.join, 60)
        assert out.read_text() == "ignored"
    assert not _ignores_sigint(os.getpid())  # the owner's own Ctrl-C still works


_OWNER = """
import asyncio, os, signal
import pytest

from agent.media.errors import DecodeTimeout
from agent.media.limits import MediaLimits
from agent.media.pool import MediaHasher

async def main():
    async with MediaHasher(workers=2) as hasher:
        pids = await asyncio.gather(hasher.run(os.getpid), hasher.run(os.getpid))
        print(*pids, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_workers_die_with_a_killed_owner() -> None:
    """SIGKILL leaves no chance to clean up: the workers must notice their
    parent is gone (they would otherwise wait for work for ever)."""
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OWNER,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
        cwd=_CHECKOUT,
    )
    assert owner.stdout is not None
    try:
        line = await asyncio.wait_for(owner.stdout.readline(), 120)
        assert await asyncio.wait_for(owner.wait(), 60) == -signal.SIGKILL
        assert len(line.split()) >= 1  # the workers' pids
        # The session id outlives the parent chain: orphans are found by it.
        left = await wait_until_gone(lambda: in_session(owner.pid), 60)
        assert left == [], [p.cmdline[:80] for p in left]
    finally:
        for proc in in_session(owner.pid):  # a failed run must not leave them either
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
