"""Functions run inside the pool's worker processes.

They take paths rather than bytes where they can, so that large files are
read by the worker and never block the event loop or cross the pipe twice.

`init_worker` runs once in every worker before its first job; `run_job`
wraps every job. Both live here, with no heavy import of their own beyond
this module's, so that a worker is ready as soon as it can run a job."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing.forkserver
import os
import resource
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from agent.media.errors import MediaTooLarge
from agent.media.image import ImageResult, image_signals
from agent.media.limits import MediaLimits
from agent.media.video import VideoHashes, video_hashes

T = TypeVar("T")

# One record per job start: (job id, worker pid). 8 bytes plus the
# Connection's 4-byte header is one write far below PIPE_BUF, which POSIX
# makes atomic, so several workers can share one pipe without a lock (a lock
# held by a worker killed mid-write would stall every other worker).
_NOTICE = struct.Struct("<qi")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What every worker of one pool generation is started with."""

    notices: Connection  # write end; the pool reads which job started when
    max_memory_bytes: int  # address-space limit of the worker, 0 = none


# Set once per worker process by init_worker (ProcessPoolExecutor hands its
# initializer's state to the jobs only through the worker's globals).
_setup: WorkerSetup | None = None


def init_worker(setup: WorkerSetup) -> None:
    """Prepare a worker: the parent alone decides when it stops, it dies with
    its parent, and its memory is bounded. Never raises: a failing initializer
    would break the whole pool."""
    global _setup
    _setup = setup
    # Ctrl-C reaches every process of the terminal's foreground group; the
    # parent stops the workers itself, so a worker must not print a
    # KeyboardInterrupt traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _release_forkserver()
    _die_with_parent()
    _limit_memory(setup.max_memory_bytes)


def run_job(job_id: int, call: Callable[[], T]) -> T:
    """Tell the pool the job starts now (its timeout counts from here, not from
    the worker's start-up), then run it."""
    if _setup is not None:
        _setup.notices.send_bytes(_NOTICE.pack(job_id, os.getpid()))
    try:
        return call()
    except MemoryError:
        limit = _setup.max_memory_bytes if _setup is not None else 0
        raise MediaTooLarge(
            f"decoding needs more memory than a media worker may use ([media] max_worker_memory_bytes = {limit})"
            if limit
            else "out of memory while decoding"
        ) from None


def parse_notice(record: bytes) -> tuple[int, int]:
    """(job id, worker pid) of a notice sent by run_job."""
    job_id, pid = _NOTICE.unpack(record)
    return int(job_id), int(pid)


def hash_image_job(source: bytes | Path, limits: MediaLimits) -> ImageResult:
    return image_signals(_read_bounded(source, limits.max_bytes), limits)


def hash_video_job(source: bytes | Path, limits: MediaLimits) -> VideoHashes:
    return video_hashes(source, limits)


def _read_bounded(source: bytes | Path, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        return source
    size = source.stat().st_size
    if size > max_bytes:
        raise MediaTooLarge(f"{source.name} is {size} bytes, limit {max_bytes}")
    return source.read_bytes()


def _release_forkserver() -> None:
    # multiprocessing gives every process the forkserver forks a copy of the
    # agent's end of the pipe whose closing tells the forkserver the agent is
    # gone. A worker holding it keeps the forkserver alive after the agent
    # died, and the forkserver keeps the worker alive: both would wait for
    # ever. Workers never start processes themselves, so they let it go.
    server: Any = getattr(multiprocessing.forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _die_with_parent() -> None:
    # A worker whose parent (the forkserver, which exits when the agent's end
    # of its pipe closes) is gone must not live on blocked on its job queue:
    # ask Linux to kill it then.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's close still ends it
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _limit_memory(max_bytes: int) -> None:
    if max_bytes <= 0:
        return
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            max_bytes = min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))
    except (OSError, ValueError):  # a platform without RLIMIT_AS: unbounded, as before
        return
