"""A process pool that hashes media without blocking the event loop.

Decoders run in worker processes: they are CPU-bound, they hold the GIL, and
they are the code most exposed to hostile input. A worker that hangs is
killed when the per-item timeout expires; a worker that dies takes only its
own item down (others caught in the crash are retried alone). Either way the
pool is rebuilt and the agent carries on.

Two clocks bound each item: a worker must begin it within
`worker_start_timeout_s` (a new worker first starts a process and imports the
decoders, which takes seconds on a loaded machine), and must finish it within
`timeout_s` of beginning it. Workers report the moment they begin a job over a
pipe, so a slow start-up never counts against an item's own time.

The pool's processes (workers, and multiprocessing's forkserver they are
forked from) end when it closes, are killed if it is garbage-collected or the
interpreter exits without closing it, and die with the agent if it is killed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from agent.media.errors import DecodeTimeout, HashingFailed, MediaError, WorkerCrashed, WorkerStartTimeout
from agent.media.image import ImageResult
from agent.media.limits import MediaLimits
from agent.media.sniff import MediaKind, media_kind
from agent.media.video import VideoHashes
from agent.media.worker import WorkerSetup, hash_image_job, hash_video_job, init_worker, parse_notice, run_job
from agent.model.signals import Signal, VideoFrameHash

P = ParamSpec("P")
T = TypeVar("T")

# How long idle workers get to exit on their own at close before they are killed.
_EXIT_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class MediaResult:
    """Perceptual hashing outcome for one item (crypto digests are computed
    while fetching, see CryptoHasher).

    Images fill `signals` (and `image`); videos fill `video_frames` (vPDQ).
    Other kinds have nothing to hash perceptually and come back empty."""

    media_type: str
    kind: MediaKind
    signals: tuple[Signal, ...] = ()
    video_frames: tuple[VideoFrameHash, ...] = ()
    image: ImageResult | None = None
    video: VideoHashes | None = None

    @property
    def truncated(self) -> bool:
        """True when limits cut the video short (its hash covers a prefix)."""
        return self.video is not None and self.video.truncated


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(eq=False, slots=True)
class _Generation:
    """One executor and the pipe its workers report job starts on."""

    executor: ProcessPoolExecutor
    reader: Connection
    writer: Connection
    loop: asyncio.AbstractEventLoop
    started: dict[int, asyncio.Future[int]] = field(default_factory=dict)

    def on_notice(self) -> None:
        try:
            while self.reader.poll():
                job_id, pid = parse_notice(self.reader.recv_bytes())
                waiter = self.started.pop(job_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(pid)
        except (EOFError, OSError):
            self.detach()

    def detach(self) -> None:
        """Stop reading notices and close the pipe (the workers hold their own copy)."""
        if not self.reader.closed:
            self.loop.remove_reader(self.reader.fileno())
            self.reader.close()
        if not self.writer.closed:
            self.writer.close()


class MediaHasher:
    """Async front of a ProcessPoolExecutor for image and video hashing.

    Use as `async with MediaHasher() as hasher: await hasher.signals_for(...)`.
    At most `workers` items run at once; the timeout counts from the moment an
    item starts in a worker, so neither a busy pool nor a worker's start-up
    times items out."""

    def __init__(
        self,
        limits: MediaLimits | None = None,
        *,
        workers: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self.limits = limits or MediaLimits()
        self.workers = workers or _default_workers()
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        # fork is unsafe next to asyncio and threads (locks copied mid-use);
        # forkserver/spawn start clean interpreters.
        if start_method not in multiprocessing.get_all_start_methods():
            start_method = "spawn"
        self._context = multiprocessing.get_context(start_method)
        self._current: _Generation | None = None
        self._generation = 0
        self._job_ids = itertools.count()
        self._slots = asyncio.Semaphore(self.workers)
        self._rebuilds = 0
        # Crash isolation (see run): _open is cleared while one item is
        # retried alone; _idle is set when no item is in a worker.
        self._isolation = asyncio.Lock()
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        # Jobs submitted and not finished, whether or not their caller still
        # waits (a cancelled caller leaves its job running, maybe hung).
        self._running: set[Future[Any]] = set()
        # Every generation not yet shut down, for the finalizer: a pool dropped
        # or left open at exit must not leave its processes behind.
        self._live: set[_Generation] = set()
        # Workers killed by a rebuild, joined at close so that none outlives it.
        self._killed: list[multiprocessing.process.BaseProcess] = []
        self._finalizer = weakref.finalize(self, _kill_all, self._live)

    @property
    def rebuilds(self) -> int:
        """How often the pool was torn down after a timeout or crash."""
        return self._rebuilds

    async def __aenter__(self) -> MediaHasher:
        self._ensure_generation()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """End every process of the pool: idle workers exit, busy ones (their
        items may be hung) are killed, and multiprocessing's forkserver stops
        when no other pool of this process still has workers."""
        current, self._current = self._current, None
        if current is None:
            return
        current.detach()
        executor = current.executor
        processes = _processes(executor) + self._killed  # shutdown() forgets them
        self._killed = []
        if any(not f.done() for f in self._running):
            _kill_workers(executor)
        # Waiting for workers to exit is blocking: do it off the loop.
        await asyncio.to_thread(_end_workers, executor, processes, _EXIT_GRACE_S)
        self._live.discard(current)
        _stop_forkserver_if_unused(self._context)

    async def hash_image(self, data: bytes | Path) -> ImageResult:
        """Perceptual signals of an image given as bytes or as a file path."""
        return await self.run(hash_image_job, data, self.limits)

    async def hash_video(self, path: Path | bytes) -> list[VideoFrameHash]:
        """vPDQ frame hashes of a video file (or its bytes)."""
        return list((await self.run(hash_video_job, path, self.limits)).frames)

    async def signals_for(self, data_or_path: bytes | Path, media_type: str) -> MediaResult:
        """Hash one item according to its (sniffed) media type."""
        kind = media_kind(media_type)
        if kind == "image":
            image = await self.run(hash_image_job, data_or_path, self.limits)
            return MediaResult(media_type, kind, signals=image.signals, image=image)
        if kind == "video":
            video = await self.run(hash_video_job, data_or_path, self.limits)
            return MediaResult(media_type, kind, video_frames=video.frames, video=video)
        return MediaResult(media_type, kind)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a picklable top-level function in a worker under the pool's
        timeout and crash policy; MediaErrors raised there propagate as is."""
        call = functools.partial(fn, *args, **kwargs)
        async with self._slots:
            try:
                return await self._attempt(call, gated=True)
            except BrokenProcessPool:
                pass
        # A dead worker (or one killed after a timeout) breaks every item in
        # flight, not only its own. So an item hit by a broken pool is retried
        # once, alone: nothing else runs meanwhile, and if the pool breaks
        # again this item is the one that crashed it.
        async with self._isolation:
            self._open.clear()
            try:
                await self._idle.wait()
                try:
                    return await self._attempt(call, gated=False)
                except BrokenProcessPool:
                    raise WorkerCrashed(
                        "worker process died while hashing this item, also when run "
                        "alone: the decoder probably crashed on it"
                    ) from None
            finally:
                self._open.set()

    async def _attempt(self, call: Callable[[], T], *, gated: bool) -> T:
        if gated:
            await self._open.wait()
        current = self._ensure_generation()
        generation = self._generation
        job_id = next(self._job_ids)
        started: asyncio.Future[int] = current.loop.create_future()
        current.started[job_id] = started
        self._in_flight += 1
        self._idle.clear()
        try:
            future: Future[T] = current.executor.submit(run_job, job_id, call)
            self._running.add(future)
            future.add_done_callback(self._running.discard)
            result = asyncio.wrap_future(future)
            try:
                await self._begun(started, result, generation)
            except BaseException:
                # Nobody awaits `result` after this (a cancelled scan, a start timeout): cancelled,
                # the pool broken later (closed on a hurried stop) leaves no exception unretrieved.
                result.cancel()
                raise
            return await asyncio.wait_for(result, self.limits.timeout_s)
        except TimeoutError:
            self._rebuild(generation)
            raise DecodeTimeout(f"hashing took longer than {self.limits.timeout_s:g} s; worker killed") from None
        except BrokenProcessPool:
            self._rebuild(generation)
            raise
        except MediaError:
            raise
        except Exception as exc:
            raise HashingFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            current.started.pop(job_id, None)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _begun(self, started: asyncio.Future[int], result: asyncio.Future[T], generation: int) -> None:
        """Wait until a worker begins the job (or it is already over), within
        the start-up limit; a worker that cannot start is replaced."""
        limit = self.limits.worker_start_timeout_s
        either: set[asyncio.Future[Any]] = {started, result}
        done, _ = await asyncio.wait(either, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            self._rebuild(generation)
            raise WorkerStartTimeout(
                f"no media worker could begin this item within {limit:g} s "
                "([media] worker_start_timeout_s); the workers were restarted"
            )

    def _ensure_generation(self) -> _Generation:
        if self._current is None:
            _start_helpers_deaf_to_sigint(self._context)
            reader, writer = self._context.Pipe(duplex=False)
            executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=self._context,
                initializer=init_worker,
                initargs=(WorkerSetup(writer, self.limits.max_worker_memory_bytes),),
            )
            current = _Generation(executor, reader, writer, asyncio.get_running_loop())
            current.loop.add_reader(reader.fileno(), current.on_notice)
            self._live.add(current)
            self._current = current
        return self._current

    def _rebuild(self, generation: int) -> None:
        """Kill the workers of pool `generation` and start a new pool.

        Several items may fail together; only the first one rebuilds."""
        if generation != self._generation or self._current is None:
            return
        old = self._current
        self._current = None
        self._generation += 1
        self._rebuilds += 1
        old.detach()
        self._killed = [p for p in self._killed if p.is_alive()] + _processes(old.executor)
        _kill_workers(old.executor)
        self._live.discard(old)
        self._ensure_generation()


def _processes(executor: ProcessPoolExecutor) -> list[multiprocessing.process.BaseProcess]:
    # ProcessPoolExecutor keeps no public list of its processes (Python 3.14
    # adds kill_workers/terminate_workers); the private mapping is the only way
    # to reach a hung worker, which shutdown() alone would wait on for ever.
    processes: Any = getattr(executor, "_processes", None) or {}
    return list(processes.values())


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    for process in _processes(executor):
        if process.is_alive():
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


def _end_workers(
    executor: ProcessPoolExecutor, processes: list[multiprocessing.process.BaseProcess], grace_s: float
) -> None:
    """Shut `executor` down and wait (bounded) for its `processes` to be gone:
    joined, so reaped, not merely signalled."""
    manager: Any = getattr(executor, "_executor_manager_thread", None)
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    if manager is not None:
        manager.join(grace_s)


def _kill_all(generations: set[_Generation]) -> None:
    """Finalizer of a pool that was not closed: kill, do not wait."""
    for generation in list(generations):
        with contextlib.suppress(Exception):  # at exit the loop may be closed already
            generation.detach()
        _kill_workers(generation.executor)
    generations.clear()


def _start_helpers_deaf_to_sigint(context: BaseContext) -> None:
    # Ctrl-C at a terminal reaches the whole process group. A forkserver or
    # resource tracker still starting its interpreter then dies with "Fatal
    # Python error: init_import_site ... KeyboardInterrupt", and workers forked
    # before their initializer runs print a KeyboardInterrupt traceback. Started
    # while SIGINT is ignored, they inherit SIG_IGN through exec (Python keeps an
    # ignored SIGINT ignored), and the forkserver hands SIG_IGN on to every
    # worker it forks: the parent alone decides when they stop.
    if context.get_start_method() != "forkserver" or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.resource_tracker.ensure_running()
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_forkserver_if_unused(context: BaseContext) -> None:
    # The forkserver is shared by every forkserver pool of the process and
    # started again on demand, so it is stopped only when no worker of any
    # pool is left. _stop is private but the only way to stop it early; at
    # exit it stops by itself, when the agent's end of its pipe closes.
    if context.get_start_method() != "forkserver" or multiprocessing.active_children():
        return
    server: Any = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop: Any = getattr(server, "_stop", None)
    if callable(stop):
        stop()
